/** Examples shown after each command's --help: the fastest way to learn a command line. */
export const PROGRAM_EXAMPLES = `
Examples:
  $ rxfer serve --root ./storage --port 9000
  $ rxfer put report.pdf                    upload (create or replace) as report.pdf
  $ rxfer add photos/cat.jpg 2024/cat.jpg   upload only if 2024/cat.jpg does not exist yet
  $ rxfer get 2024/cat.jpg ~/Downloads/     download into a folder
  $ RXFER_HOST=files.lan rxfer get notes.txt
  $ RXFER_TOKEN=alice.… rxfer put --tls --ca ca.pem -H files.lan notes.txt
  $ rxfer token --user alice                create a user token for the config

Exit status: 0 done, 1 transfer or server error (printed as "rxfer: ERR <CODE> <message>"),
2 usage or configuration error, 130 interrupted.`;

export const SERVE_EXAMPLES = `
Examples:
  $ rxfer serve                             defaults: 127.0.0.1:9000
  $ rxfer serve --config config/default.json
  $ rxfer serve --host 0.0.0.0 --port 9100 --root /srv/rxfer

Flags override the config file. SIGINT or SIGTERM stops the server gracefully.`;

export const PUT_EXAMPLES = `
REMOTE defaults to the file name of LOCAL; a REMOTE ending in "/" is a folder on the server.

Examples:
  $ rxfer put notes.txt                     stored as notes.txt
  $ rxfer put notes.txt docs/               stored as docs/notes.txt
  $ rxfer put ./build/app.tar.gz releases/app-1.2.tar.gz -H files.lan -p 9100
  $ rxfer put -r ./photos backup/photos        a whole folder, small files pipelined on one connection

Interrupted? Run the same command again: it resumes where it stopped once the bytes already on the
server are proven (by their digest) to match, and skips files the server already has (same size and
digest). Digests are SHA-256 unless --hash blake3 (or RXFER_HASH=blake3) asks for BLAKE3.`;

export const ADD_EXAMPLES = `
Like put, but fails with ERR EXISTS if REMOTE already exists on the server.

Examples:
  $ rxfer add notes.txt
  $ rxfer add scan.png archive/2024/scan.png`;

export const GET_EXAMPLES = `
LOCAL defaults to the file name of REMOTE in the current folder; an existing folder receives the file.
The file appears only once complete and verified (SHA-256, or BLAKE3 with --hash blake3); an existing
LOCAL is replaced atomically.

Examples:
  $ rxfer get notes.txt
  $ rxfer get docs/notes.txt /tmp/
  $ rxfer get releases/app-1.2.tar.gz app.tar.gz -q
  $ rxfer get -r photos/2024 ~/Pictures/        the whole folder, into ~/Pictures/2024
                                                (names the server lists are checked: none lands outside)

Interrupted? Run the same command again: the part kept in .<name>.rxfer-resume (files of 1 MiB or
more) is checked against the server's file and only the rest is fetched; files already here (same size
and digest) are skipped.`;

export const TOKEN_EXAMPLES = `
The token is printed once; the config stores only its scrypt hash. Clients pass it in RXFER_TOKEN
(or --token, which other users can see in \`ps\`).

Examples:
  $ rxfer token --user alice                      write access to the folder alice/
  $ rxfer token --user auditor --role read --root ""
  $ rxfer token --user bob --quota 10737418240 --json`;
