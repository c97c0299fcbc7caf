import { randomBytes } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { TOKENS } from '../../src/container/tokens';
import { SecureServer, SecureServerOptions, TestUser, makeUser } from '../security/support/server';
import { Wire, destroyAll, eventually, sha256 } from '../security/support/wire';
import { quotaProbes } from './support/quota-probes';
import { Gate, GatedStorage, startGatedServer } from './support/gated-storage';

/**
 * The quota ledger and the requests that outlive their connection. A commit goes on when the
 * connection is cut while it runs (its data and trailer all arrived): the file is stored, so the
 * ledger must count it. Settled as an abort on the cut, the ledger forgot it (and a resumed upload's
 * kept prefix with it), and the user could store that much beyond the quota. A resume whose storage
 * answered after the deadline had its kept bytes deleted, which the ledger still counted.
 */

const KiB = 1024;
const MiB = 1024 * KiB;
const QUOTA = 8 * MiB;

/** A resumable upload (from 1 MiB), cut short after `from` bytes or resumed from there. */
const BIG = randomBytes(1.5 * MiB);

const uploadFrom = (name: string, data: Buffer, from: number): Buffer =>
  Buffer.concat([Buffer.from(`UPLOAD ${data.length} FROM ${from} ${sha256(data.subarray(0, from))}\n${name}\n`), data.subarray(from), Buffer.from(`SHA256 ${sha256(data)}\n`)]);

const upload = (name: string, data: Buffer): Buffer => Buffer.concat([Buffer.from(`UPLOAD ${data.length}\n${name}\n`), data, Buffer.from(`SHA256 ${sha256(data)}\n`)]);

describe('the quota ledger and requests that outlive their connection', () => {
  let server: SecureServer;
  let storage: GatedStorage;
  let user: TestUser;
  const wires: Wire[] = [];
  const probes = quotaProbes(() => server, wires);

  const start = async (options: SecureServerOptions = {}) => {
    user = await makeUser('q', 'write', 'q', QUOTA);
    ({ server, storage } = await startGatedServer(user, options));
  };
  afterEach(async () => {
    destroyAll(wires);
    await server.close();
  });

  const stored = (name: string) => join(server.root, 'q', name);

  /** Every session that ended has released what it held (what a cut sets off has run). */
  const sessionsReleased = async () => {
    await eventually(() => server.connections() === 0, 'the server to see the connection gone');
    await server.running.container.get(TOKENS.ConnectionActor).released();
  };

  /** RESUME's answer for `name`, asked again until `ready` says it will do (by default: no claim on it in flight, which says BUSY). */
  const resumeAnswer = async (name: string, ready = (answer: string) => !answer.startsWith('ERR BUSY'), what = `no claim on ${name} in flight`): Promise<string> => {
    let answer = '';
    await eventually(async () => {
      const asking = await probes.open(user);
      await asking.send(`RESUME\n${name}\n`);
      answer = await asking.line();
      asking.destroy();
      return ready(answer);
    }, what);
    return answer;
  };

  /** An interrupted upload of BIG, cut after `bytes`: what the server keeps (RESUME's answer, once it is kept). */
  const keepPrefix = async (name: string, bytes: number): Promise<string> => {
    const wire = await probes.open(user);
    await wire.send(Buffer.concat([Buffer.from(`UPLOAD ${BIG.length}\n${name}\n`), BIG.subarray(0, bytes)]));
    expect(await wire.line()).toBe('OK file recv');
    wire.destroy();
    await wire.closed;
    return resumeAnswer(name, (answer) => answer.startsWith('OK partial '), `the interrupted upload of ${name} to be kept`);
  };

  /**
   * Sends `request`, and resets the connection while storage is held at `gate`, then lets storage go on.
   * A reset: the session ends at once (after a FIN it would wait for the commit's reply to send it). Any
   * other connection the test still has goes too, so that every session is seen gone.
   */
  const cutWhileHeld = async (gate: Gate, request: Buffer | string): Promise<void> => {
    const wire = await probes.open(user);
    await wire.send(request);
    await gate.reached;
    wire.socket.resetAndDestroy();
    destroyAll(wires);
    await wire.closed;
    await sessionsReleased();
    gate.open();
  };

  /** Sends `request`, and resets the connection while the quota reservation of its upload waits on storage. */
  const cutDuringReservation = (request: Buffer | string): Promise<void> => cutWhileHeld(storage.hold('sizeOf'), request);



  /** Sends `request` (an upload in full), cuts the connection while its commit is held, then lets the commit go on. */
  const cutDuringCommit = async (request: Buffer, name: string, size: number): Promise<void> => {
    await cutWhileHeld(storage.hold('commit'), request);
    // The commit was not stopped by the cut: the file is stored in full.
    await eventually(async () => (await stat(stored(name)).catch(() => undefined))?.size === size, `${name} to be stored after the cut`);
  };

  test('a small upload cut during its commit: stored, and counted', async () => {
    await start();
    const data = randomBytes(5000);
    await cutDuringCommit(upload('small.bin', data), 'small.bin', data.length);
    expect(await readFile(stored('small.bin'))).toEqual(data);
    await probes.expectLedgerMatchesDisk(user);
  });

  test('a large upload that replaces a file, cut during its commit: stored, and counted as the growth', async () => {
    await start();
    const first = randomBytes(200 * KiB);
    const wire = await probes.open(user);
    expect(await wire.upload('large.bin', first)).toEqual(['OK file recv', `OK file data recv ${first.length} ${sha256(first)}`]);
    await cutDuringCommit(upload('large.bin', BIG), 'large.bin', BIG.length);
    expect(sha256(await readFile(stored('large.bin')))).toBe(sha256(BIG));
    await probes.expectLedgerMatchesDisk(user);
  });

  test('a resumed upload cut during its commit: the kept prefix and the rest are both counted', async () => {
    await start();
    const offset = Number((await keepPrefix('resumed.bin', 600 * KiB)).split(' ')[2]);
    expect(offset).toBeGreaterThan(0);
    await cutDuringCommit(uploadFrom('resumed.bin', BIG, offset), 'resumed.bin', BIG.length);
    expect(sha256(await readFile(stored('resumed.bin')))).toBe(sha256(BIG));
    await probes.expectLedgerMatchesDisk(user);
  });

  test('a resume whose storage answers after the deadline keeps the kept bytes, and the ledger still counts them', async () => {
    await start({ limits: { stallTimeoutMs: 1000 } });
    const kept = await keepPrefix('late.bin', 600 * KiB);
    const offset = Number(kept.split(' ')[2]);
    const gate = storage.hold('beginWrite');
    const wire = await probes.open(user);
    await wire.send(`UPLOAD ${BIG.length} FROM ${offset} ${sha256(BIG.subarray(0, offset))}\nlate.bin\n`);
    await gate.reached;
    // The deadline refuses the resume while storage has not answered.
    expect(await wire.line()).toMatch(/^ERR STORAGE_FAILED /);
    wire.destroy();
    await wire.closed;
    gate.open();
    // Its late answer was a claim on the kept upload: given back (RESUME is BUSY until then), not deleted.
    expect(await resumeAnswer('late.bin')).toBe(kept);
    await probes.expectLedgerMatchesDisk(user);
    // And the resume still works from there.
    const resuming = await probes.open(user);
    await resuming.send(uploadFrom('late.bin', BIG, offset));
    expect(await resuming.line()).toBe('OK file recv');
    expect(await resuming.line()).toBe(`OK file data recv ${BIG.length} ${sha256(BIG)}`);
    expect(sha256(await readFile(stored('late.bin')))).toBe(sha256(BIG));
    await probes.expectLedgerMatchesDisk(user);
  });

  test('a resume refused after its reservation, on a connection gone meanwhile: the reservation is given back', async () => {
    await start();
    await keepPrefix('refused.bin', 600 * KiB);
    // A digest that does not match what is kept: RESUME_MISMATCH, once the reservation is made.
    await cutDuringReservation(`UPLOAD ${BIG.length} FROM 1000 ${'0'.repeat(64)}\nrefused.bin\n`);
    await probes.expectLedgerMatchesDisk(user);
  });

  test('a fresh upload over a kept one, on a connection gone during its reservation: the kept upload stays', async () => {
    await start();
    const kept = await keepPrefix('kept.bin', 600 * KiB);
    await cutDuringReservation(`UPLOAD ${BIG.length}\nkept.bin\n`);
    // Nothing was going to be uploaded: no staging file was made, so the kept bytes were not replaced.
    expect(await resumeAnswer('kept.bin')).toBe(kept);
    await probes.expectLedgerMatchesDisk(user);
  });
});
