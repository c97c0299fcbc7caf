import { close, write, writev } from 'node:fs';

type WritevCallback = (err: NodeJS.ErrnoException | null, written: number, buffers: NodeJS.ArrayBufferView[]) => void;

/** Writes `data` at `position` to the end, however many short writes it takes. */
const writeRest = (fd: number, data: Buffer, position: number, done: (err: NodeJS.ErrnoException | null) => void, idle = 0): void => {
  if (data.length === 0) return done(null);
  // A write that takes nothing and reports no error, again and again, would otherwise loop forever.
  if (idle > 5) return done(Object.assign(new Error(`the file system took no bytes at offset ${position}`), { code: 'EIO' }));
  write(fd, data, 0, data.length, position, (err, written) => {
    if (err) return done(err);
    writeRest(fd, data.subarray(written), position + written, done, written === 0 ? idle + 1 : 0);
  });
};

/**
 * `writev` for a staging file's stream, finishing a short write itself at the right place. Node
 * 20's WriteStream writes the rest of a short writev at the position *after the whole batch*
 * (`writevAll` retries at `this.pos`, already advanced), leaving a hole of zeros. A disk that fills
 * up cuts a writev short, and if room comes back before the retry (another download's staging file
 * removed, issue 14), the retry succeeds: the file then has the right size and the wrong bytes, and
 * neither the digest (taken from the socket) nor the size check can tell.
 */
const writevFully = (fd: number, buffers: NodeJS.ArrayBufferView[], position: number | null, callback: WritevCallback): void => {
  writev(fd, buffers, position, (err, written) => {
    const total = buffers.reduce((sum, buffer) => sum + buffer.byteLength, 0);
    // Without a position the file's own offset moves with each write: Node's retry is right then.
    if (err || written >= total || position === null) return callback(err, written, buffers);
    const rest = Buffer.concat(buffers.map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength))).subarray(written);
    writeRest(fd, rest, position + written, (failed) => callback(failed, failed ? written : total, buffers));
  });
};

/**
 * What staging files are written through (the `fs` option of their WriteStream): Node's own calls,
 * but writev finishes short writes itself (see writevFully). Server uploads and client downloads.
 */
export const exactWrites = { close, write, writev: writevFully };
