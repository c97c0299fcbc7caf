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

Exit status: 0 done, 1 transfer, connection or server error (printed as "rxfer: ERR <CODE> <message>",
or with --json as a JSON object on stderr), 2 usage or configuration error, 130 interrupted.`;

export const SERVE_EXAMPLES = `
Examples:
  $ rxfer serve                             defaults: 127.0.0.1:9000
  $ rxfer serve --config config/default.json
  $ rxfer serve --host 0.0.0.0 --port 9100 --root /srv/rxfer

Flags override the config file. SIGINT or SIGTERM stops the server gracefully.`;

export const PUT_EXAMPLES = `
REMOTE defaults to the file name of LOCAL. A REMOTE ending in "/", or a folder that exists on the
server, receives the file under its own name (a folder named with "/" is created as needed). Several
LOCALs go into the folder named last. "-" reads standard input (then name the remote file).

Examples:
  $ rxfer put notes.txt                     stored as notes.txt
  $ rxfer put notes.txt docs/               stored as docs/notes.txt
  $ rxfer put *.jpg photos/                 several files into photos/
  $ rxfer put ./build/app.tar.gz releases/app-1.2.tar.gz -H files.lan:9100
  $ tar c . | rxfer put - backup.tar        standard input (spooled to a temporary file first)
  $ rxfer put -r ./photos backup/           a whole folder, as backup/photos (empty folders too)
  $ rxfer put -r ./photos backup/pics       a whole folder, as backup/pics

Symbolic links, FIFOs and devices inside a folder are never followed nor sent; put -r says which
it skipped. Interrupted? Run the same command again: it resumes where it stopped once the bytes
already on the server are proven (by their digest) to match, and skips files the server already has
(same size and digest). Digests are SHA-256 unless --hash blake3 (or RXFER_HASH=blake3) asks for BLAKE3.`;

export const ADD_EXAMPLES = `
Like put, but fails with ERR EXISTS if REMOTE already exists on the server.

Examples:
  $ rxfer add notes.txt
  $ rxfer add scan.png archive/2024/scan.png
  $ rxfer add *.log logs/                   several files into a folder`;

export const GET_EXAMPLES = `
LOCAL defaults to the file name of REMOTE in the current folder. A folder receives the file; a LOCAL
ending in "/" must be an existing folder (never a file of that name). "-" (or /dev/stdout) writes to
standard output. A LOCAL that is a link to a file is written through, as cp does (the link stays);
a dangling link is refused. The file appears only once complete and verified (SHA-256, or BLAKE3
with --hash blake3); an existing LOCAL is replaced atomically. Standard output, a FIFO or a device
gets the bytes as they arrive and is verified at the end (exit 1 if the check fails).

Examples:
  $ rxfer get notes.txt
  $ rxfer get docs/notes.txt /tmp/
  $ rxfer get a.txt b.txt c.txt ~/inbox/    several files into a folder
  $ rxfer get logs/today.log - | less       to standard output
  $ rxfer get releases/app-1.2.tar.gz app.tar.gz -q
  $ rxfer get -r photos/2024 ~/Pictures/        the whole folder, into ~/Pictures/2024
                                                (names the server lists are checked: none lands outside)

Interrupted? Run the same command again: the part kept in .<name>.rxfer-resume (files of 1 MiB or
more) is checked against the server's file and only the rest is fetched; files already here (same size
and digest) are skipped.`;

export const LS_EXAMPLES = `
Folders end in "/". A missing name is an error (exit 1); a file is shown as itself.

Examples:
  $ rxfer ls                                the top of your storage
  $ rxfer ls photos/                        photos' files and subfolders
  $ rxfer ls -r photos                      everything below photos
  $ rxfer ls photos --json | jq '.[].name'`;

export const STAT_EXAMPLES = `
Examples:
  $ rxfer stat docs/notes.txt               type, size, digest, modified
  $ rxfer stat photos --json
  $ rxfer stat big.iso --hash blake3        the digest in BLAKE3`;

export const RM_EXAMPLES = `
Without -r only files and empty folders are deleted; a folder with files in it needs -r.

Examples:
  $ rxfer rm old.txt
  $ rxfer rm a.txt b.txt c.txt
  $ rxfer rm -r photos/2019                 the folder and everything in it
  $ rxfer rm -f maybe.txt                   no error if it is not there`;

export const MV_EXAMPLES = `
Never replaces an existing name (ERR EXISTS names it): delete it first. A TO ending in "/", or an
existing folder, receives FROM under its own name.

Examples:
  $ rxfer mv draft.txt final.txt            rename
  $ rxfer mv final.txt archive/             into the folder archive
  $ rxfer mv a.txt b.txt archive/           several into a folder`;

export const MKDIR_EXAMPLES = `
Parents are created, and a folder that already exists is not an error (as mkdir -p).

Examples:
  $ rxfer mkdir photos/2024/summer
  $ rxfer mkdir inbox outbox`;

export const TOKEN_EXAMPLES = `
The token is printed once; the config stores only its scrypt hash. Clients pass it in RXFER_TOKEN
(or --token, which other users can see in \`ps\`).

Examples:
  $ rxfer token --user alice                      write access to the folder alice/
  $ rxfer token --user auditor --role read --root ""
  $ rxfer token --user bob --quota 10737418240 --json`;
