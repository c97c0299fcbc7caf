import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SecureServer, startSecureServer, stagingFiles } from '../security/support/server';
import { GUARD_MS, Wire, destroyAll, eventually, sha256, uploadBytes } from '../security/support/wire';

/**
 * Issue 16, findings 1–3: one client pipelining downloads it never reads must not keep what the
 * requests took (a transfer slot, descriptors, memory) once it is gone, nor take more than a small
 * budget of them while it is there. Each test failed on the code before the fix.
 */

const MiB = 1024 * 1024;
const openFds = (): number => readdirSync('/proc/self/fd').length;
const repeat = (request: string, times: number): Buffer => Buffer.from(request.repeat(times));

/** Samples `measure` every 20 ms for `ms`, returning the largest value seen. */
const peakOver = async (ms: number, measure: () => number): Promise<number> => {
  let peak = measure();
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    peak = Math.max(peak, measure());
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return peak;
};

describe.each([
  ['finding 1 (maxTransfersPerUser 1)', 1],
  ['findings 2 and 3 (the default limit)', 64],
])('issue 16: what one pipelining client takes, it gives back: %s', (_title, maxTransfersPerUser) => {
  let server: SecureServer;
  const wires: Wire[] = [];
  const open = async () => {
    const wire = await Wire.open(server.port);
    wires.push(wire);
    return wire;
  };

  beforeAll(async () => {
    server = await startSecureServer({ server: { maxConnectionsPerIp: 100 }, limits: { maxTransfersPerUser }, auth: { anonymous: 'write' } });
    await writeFile(join(server.root, 'big'), randomBytes(20_000_000));
    await mkdir(join(server.root, 'dfm'));
    await writeFile(join(server.root, 'dfm', 'big'), randomBytes(MiB));
    await mkdir(join(server.root, 'mem'));
    await writeFile(join(server.root, 'mem', 'f64'), randomBytes(64 * 1024));
    await writeFile(join(server.root, 'small'), 'small\n');
  });
  afterEach(() => destroyAll(wires));
  afterAll(() => server.close());

  /** The user's next transfers are served (not ERR BUSY) once the server has noticed the peer left. */
  const expectSlotFree = async () => {
    let last = '';
    await eventually(
      async () => {
        const wire = await open();
        last = (await wire.download('small')).reply;
        wire.destroy();
        return !last.startsWith('ERR BUSY');
      },
      'the transfer slot to be given back',
      GUARD_MS,
    );
    expect(last).toBe(`OK 6 ${sha256('small\n')}`);
    const wire = await open();
    expect(await wire.upload('after.txt', 'after\n')).toEqual(['OK file recv', `OK file data recv 6 ${sha256('after\n')}`]);
  };

  const slots = maxTransfersPerUser === 1 ? test : test.skip;
  const others = maxTransfersPerUser === 1 ? test.skip : test;

  slots('finding 1: two 20 MB downloads, the first half-read, then a reset: the slot is given back', async () => {
    for (let round = 0; round < 3; round++) {
      const wire = await open();
      await wire.send('DOWNLOAD\nbig\nDOWNLOAD\nbig\n');
      // The first reply is on its way (its data is being sent), the second waits behind it.
      expect(await wire.line()).toMatch(/^OK 20000000 [0-9a-f]{64}$/);
      wire.socket.pause();
      wire.destroy();
      await wire.closed;
      await expectSlotFree();
    }
  });

  slots('finding 1: the same with a half-close (FIN) and a peer that never reads: cut by the stall guard or not, the slot comes back once it is gone', async () => {
    const wire = await open();
    wire.socket.pause();
    await wire.send('DOWNLOAD\nbig\nDOWNLOAD\nbig\nDOWNLOAD\nbig\n');
    wire.socket.end();
    wire.destroy();
    await wire.closed;
    await expectSlotFree();
  });

  others('finding 2: 4,000 pipelined downloads of a 1 MiB file hold a few descriptors, and none once the peer is gone', async () => {
    const baseline = openFds();
    const wire = await open();
    await wire.send(repeat('DOWNLOAD\ndfm/big\n', 4000));
    // The first reply arrives (the server is working on the batch); we read nothing more.
    expect(await wire.line()).toMatch(/^OK 1048576 /);
    wire.socket.pause();
    const peak = await peakOver(1000, openFds);
    wire.destroy();
    await wire.closed;
    await eventually(() => openFds() <= baseline + 2, `descriptors back to the baseline (${baseline}; now ${openFds()})`);
    // Read ahead within the budget only: 32 downloads, not 4,000 open files.
    expect(peak - baseline).toBeLessThanOrEqual(48);
  });

  others('finding 3: 4,000 pipelined downloads of a 64 KiB file, nothing read: memory stays within the budget', async () => {
    const held = () => process.memoryUsage().arrayBuffers;
    const baseline = held();
    const wire = await open();
    wire.socket.pause();
    await wire.send(repeat('DOWNLOAD\nmem/f64\n', 4000));
    const peak = await peakOver(1500, held);
    wire.destroy();
    await wire.closed;
    // Before: ≈ 4,000 × 64 KiB = 250 MiB read into memory for one connection.
    expect((peak - baseline) / MiB).toBeLessThan(32);
    await expectSlotFree();
  });

  test('uploads behind a full budget still complete in order: 200 pipelined small uploads and downloads', async () => {
    const wire = await open();
    const files = Array.from({ length: 100 }, (_, i) => randomBytes(100 + i));
    await wire.send(Buffer.concat(files.flatMap((data, i) => [uploadBytes(`pipe/${i}`, data), Buffer.from(`DOWNLOAD\npipe/${i}\n`)])));
    for (const data of files) {
      expect(await wire.line()).toBe('OK file recv');
      expect(await wire.line()).toBe(`OK file data recv ${data.length} ${sha256(data)}`);
      expect(await wire.line()).toBe(`OK ${data.length} ${sha256(data)}`);
      expect((await wire.bytes(data.length)).equals(data)).toBe(true);
    }
    expect(await stagingFiles(server.root)).toEqual([]);
  });
});
