import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ServeProcess } from '../../ops/ops-support';

/**
 * A raw /dev/fuse (protocol 7.12) file system in Python, so nothing needs installing: it mounts
 * itself on argv[1] as `label` and answers INIT, RELEASE/RELEASEDIR/FLUSH and DESTROY; `dispatch`
 * holds the `elif` branches for the rest (`opcode`, `unique`, `nodeid`, `body`, `attr`, `reply`
 * are in scope; an unknown opcode gets ENOSYS, and the kernel then asks what it can do without).
 * `preamble`: Python run before the mount (argument parsing).
 */
export const fuseScript = (label: string, dispatch: string, preamble = ''): string => String.raw`
import ctypes, os, struct, sys
${preamble}
fd = os.open('/dev/fuse', os.O_RDWR)
libc = ctypes.CDLL(None, use_errno=True)
if libc.mount(b'${label}', sys.argv[1].encode(), b'fuse', 0, f'fd={fd},rootmode=40000,user_id=0,group_id=0,allow_other'.encode()) != 0:
    sys.exit('mount failed: errno %d' % ctypes.get_errno())
def attr(ino, mode, size, nlink=1):
    return struct.pack('<QQQQQQIIIIIIIIII', ino, size, 1, 0, 0, 0, 0, 0, 0, mode, nlink, 0, 0, 0, 4096, 0)
def reply(unique, payload=b'', error=0):
    os.write(fd, struct.pack('<IiQ', 16 + len(payload), error, unique) + payload)
while True:
    try:
        req = os.read(fd, 1 << 20)
    except OSError:
        break
    length, opcode, unique, nodeid = struct.unpack_from('<IIQQ', req)
    body = req[40:]
    if opcode == 26:
        reply(unique, struct.pack('<IIIIHHI', 7, 12, 0, 0, 0, 0, 4096))
    elif opcode in (18, 25, 29):
        reply(unique)
    elif opcode == 38:
        break
${dispatch}
    else:
        reply(unique, error=-38)
`;

/**
 * A FUSE file system of one file, `hung.bin` (its size the second argument), whose reads are never answered: a dead mount (an
 * NFS server gone, a FUSE daemon stuck).
 */
const HUNG_FS = fuseScript(
  'rxfer-hung',
  String.raw`    elif opcode == 1:
        if body.split(b'\0')[0] == b'hung.bin':
            reply(unique, struct.pack('<QQQQII', 2, 0, 0, 0, 0, 0) + attr(2, 0o100644, SIZE))
        else:
            reply(unique, error=-2)
    elif opcode == 3:
        reply(unique, struct.pack('<QII', 0, 0, 0) + (attr(1, 0o40755, 0) if nodeid == 1 else attr(2, 0o100644, SIZE)))
    elif opcode in (14, 27):
        reply(unique, struct.pack('<QII', 0, 0, 0))
    elif opcode in (15, 2, 42, 36):
        pass  # READ never answered; FORGET and INTERRUPT take no reply`,
  'SIZE = int(sys.argv[2])',
);

export const mounted = (target: string): boolean => readFileSync('/proc/self/mounts', 'utf8').split('\n').some((line) => line.split(' ')[1] === target);

/** Why this machine cannot run the test, or undefined if it can (root, /dev/fuse, python3). */
export const cannotRun = (): string | undefined => {
  if (process.getuid?.() !== 0) return 'not root';
  if (!existsSync('/dev/fuse')) return 'no /dev/fuse';
  try {
    execFileSync('python3', ['-c', 'import ctypes']);
  } catch {
    return 'no python3';
  }
  return undefined;
};

/**
 * Mounts the dead file system on `folder` (made if missing), its one file `hung.bin` of `size` bytes;
 * the script goes to `scriptDir`. Resolves once the mount is there.
 */
export const mountHung = async (folder: string, size: number, scriptDir: string): Promise<ChildProcess> => {
  await mkdir(folder, { recursive: true });
  const script = join(scriptDir, 'hung-fs.py');
  await writeFile(script, HUNG_FS);
  const fs = spawn('python3', [script, folder, String(size)], { stdio: 'ignore' });
  for (let i = 0; i < 100 && !mounted(folder); i++) await new Promise((resolve) => setTimeout(resolve, 100));
  if (!mounted(folder)) {
    fs.kill('SIGKILL');
    throw new Error(`the dead file system did not mount on ${folder}`);
  }
  return fs;
};

/**
 * Ends the dead file system: killing it first aborts every read hung on it (they fail with ENOTCONN),
 * then the mount goes.
 */
export const unmountHung = async (fs: ChildProcess | undefined, folder: string): Promise<void> => {
  fs?.kill('SIGKILL');
  for (let i = 0; i < 5 && mounted(folder); i++) {
    try {
      execFileSync('umount', ['-l', folder]);
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
};

/**
 * `rxfer serve` as a process of its own on `root` (a call that hangs must hang it, never the test
 * runner), with a deadline of 1 s for every storage call; its config goes to `dir`. Resolves with
 * the process and its port.
 */
export const serveWithDeadline = async (root: string, dir: string): Promise<{ serve: ServeProcess; port: number }> => {
  const config = join(dir, 'rxfer.json');
  await writeFile(
    config,
    JSON.stringify({
      server: { host: '127.0.0.1', port: 0, shutdownGraceMs: 0 },
      storage: { root },
      limits: { stallTimeoutMs: 1000 },
      metrics: { host: '127.0.0.1', port: 0 },
    }),
  );
  const serve = ServeProcess.start(['--config', config]);
  return { serve, port: (await serve.ports()).port };
};
