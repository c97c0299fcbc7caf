import { Readable } from 'node:stream';

/**
 * A reply body already whole in memory (a small file read in one go, issue 20): still a Readable for
 * whoever expects one, but sendBody writes `whole` to the socket at once instead of running the
 * stream machinery (and a stall timer) per file. Readable.from, its usual stand-in, also iterates
 * asynchronously, a few promise turns per file.
 */
export class InMemoryBody extends Readable {
  constructor(readonly whole: Buffer) {
    super({ read() {} });
    if (whole.length > 0) this.push(whole);
    this.push(null);
  }
}
