import '../session/support/fail-fast';
import { Readable } from 'node:stream';
import { EmitAckStage } from '../../../src/pipeline/stages/emit-ack.stage';
import { RxferError } from '../../../src/errors/rxfer-error';
import type { RemoteName } from '../../../src/protocol/remote-name';
import type { ReplyEvent, SessionEvent } from '../../../src/session/session-event';
import type { Transfer } from '../../../src/session/transfer';
import type { ReadHandle } from '../../../src/storage/storage-adapter';
import { captureLogs, fakeSession, settlesNow } from '../session/support/fake-session';
import { flush, runStage } from './support/run-stage';

const H = 'cd'.repeat(32);

const readAll = async (stream: Readable): Promise<Buffer> => {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
};

const setup = () => {
  const { logger, lines } = captureLogs();
  const ctx = fakeSession({ logger });
  const transfer = ctx.beginTransfer({ verb: 'STAT' });
  transfer.name = 'dir/f.txt' as RemoteName;
  return { ctx, lines, transfer, ...runStage(new EmitAckStage(), ctx) };
};

describe('EmitAckStage', () => {
  test("an accepted file operation: its reply, final (it carries the transfer and settles it)", async () => {
    const { input, out, transfer } = setup();
    transfer.opReply = { kind: 'done', what: 'deleted' };
    input.next({ type: 'accepted', transfer });
    expect(out).toEqual([{ type: 'reply', reply: { kind: 'done', what: 'deleted' }, transfer }]);
    expect(await settlesNow(transfer.settled)).toBe(true);
  });

  test('an accepted LIST: the listing line and its bytes as the body; the listing leaves the transfer', async () => {
    const { input, out, transfer } = setup();
    transfer.listing = { body: Buffer.from('a\nb\n'), count: 2 };
    input.next({ type: 'accepted', transfer });
    const reply = out[0] as ReplyEvent;
    expect(reply.reply).toEqual({ kind: 'listing', bytes: 4, count: 2 });
    expect(reply.transfer).toBe(transfer);
    expect(reply.body?.size).toBe(4);
    expect((await readAll(reply.body!.stream)).toString()).toBe('a\nb\n');
    expect(transfer.listing).toBeUndefined();
    expect(await settlesNow(transfer.settled)).toBe(true);
  });

  test('an accepted LIST page with more to come says so; an empty listing has an empty body', async () => {
    const { input, out, transfer, ctx } = setup();
    transfer.listing = { body: Buffer.alloc(0), count: 0, more: true };
    input.next({ type: 'accepted', transfer });
    const reply = out[0] as ReplyEvent;
    expect(reply.reply).toEqual({ kind: 'listing', bytes: 0, count: 0, more: true });
    expect(reply.body?.size).toBe(0);
    expect(await readAll(reply.body!.stream)).toEqual(Buffer.alloc(0));
    const other = ctx.beginTransfer({ verb: 'LIST' });
    other.listing = { body: Buffer.from('x\n'), count: 1, more: false } as Transfer['listing'];
    input.next({ type: 'accepted', transfer: other });
    expect((out[1] as ReplyEvent).reply).toEqual({ kind: 'listing', bytes: 2, count: 1 });
  });

  test("an accepted upload header: OK file recv, not final (the data is still owed)", async () => {
    const { input, out, transfer } = setup();
    input.next({ type: 'accepted', transfer });
    expect(out).toEqual([{ type: 'reply', reply: { kind: 'fileRecv' } }]);
    expect(await settlesNow(transfer.settled)).toBe(false);
  });

  test('an accepted download: size and digest, the file as the body, final', async () => {
    const { input, out, transfer } = setup();
    const stream = Readable.from([Buffer.from('hello')]);
    transfer.download = { file: { name: 'f' as RemoteName, size: 5, digest: H, mtimeMs: 1 }, stream, offset: 0 } as ReadHandle;
    input.next({ type: 'accepted', transfer });
    expect(out).toEqual([{ type: 'reply', reply: { kind: 'downloadReady', size: 5, digest: H }, transfer, body: { stream, size: 5 } }]);
    expect(await settlesNow(transfer.settled)).toBe(true);
  });

  test('a resumed download: the offset in the reply, only the rest as the body', () => {
    const { input, out, transfer } = setup();
    const stream = Readable.from([]);
    transfer.download = { file: { name: 'f' as RemoteName, size: 10, digest: H, mtimeMs: 1 }, stream, offset: 4 } as ReadHandle;
    input.next({ type: 'accepted', transfer });
    expect(out).toEqual([{ type: 'reply', reply: { kind: 'downloadReady', size: 10, digest: H, offset: 4 }, transfer, body: { stream, size: 6 } }]);
  });

  test('committed: OK file data recv with the stored size and digest, final, logged as stored', async () => {
    const { input, out, transfer, ctx, lines } = setup();
    ctx.log.level = 'debug';
    input.next({ type: 'committed', transfer, file: { name: 'f' as RemoteName, size: 7, digest: H, mtimeMs: 1 } });
    expect(lines.some((line) => String(line.msg).startsWith('Stored dir/f.txt (7 bytes)'))).toBe(true);
    expect(out).toEqual([{ type: 'reply', reply: { kind: 'dataRecv', size: 7, digest: H }, transfer }]);
    expect(await settlesNow(transfer.settled)).toBe(true);
  });

  test('refused: the error reply carrying the transfer, settled, logged', async () => {
    const { input, out, transfer, lines } = setup();
    const error = new RxferError('FORBIDDEN', 'rita (read) may not STAT');
    input.next({ type: 'refused', transfer, error });
    expect(out).toEqual([{ type: 'reply', reply: { kind: 'error', code: 'FORBIDDEN', message: error.message }, closeAfter: false, transfer }]);
    expect(await settlesNow(transfer.settled)).toBe(true);
    expect(lines.find((l) => l.msg === 'Refused STAT: FORBIDDEN rita (read) may not STAT')).toMatchObject({ level: 30, file: 'dir/f.txt', code: 'FORBIDDEN' });
  });

  test('refused NOT_FOUND is a NOT FOUND reply', () => {
    const { input, out, transfer } = setup();
    input.next({ type: 'refused', transfer, error: new RxferError('NOT_FOUND', 'f does not exist') });
    expect(out).toEqual([{ type: 'reply', reply: { kind: 'notFound', message: 'f does not exist' }, transfer }]);
  });

  test('a protocol error: its error reply, closing, logged as a warning', () => {
    const { input, out, lines } = setup();
    const error = new RxferError('LINE_TOO_LONG', 'line over 4096 bytes');
    input.next({ type: 'protocolError', error });
    expect(out).toEqual([{ type: 'reply', reply: { kind: 'error', code: 'LINE_TOO_LONG', message: 'line over 4096 bytes' }, closeAfter: true }]);
    expect(lines.find((l) => l.msg === 'Protocol error: LINE_TOO_LONG line over 4096 bytes')).toMatchObject({ level: 40, code: 'LINE_TOO_LONG' });
  });

  test('replies pass; every other event ends here', () => {
    const { input, out, transfer } = setup();
    const reply: SessionEvent = { type: 'reply', reply: { kind: 'bye' } };
    const dropped: SessionEvent[] = [{ type: 'shutdown' }, { type: 'named', transfer, raw: Buffer.from('x') }, { type: 'data', transfer, bytes: Buffer.from('x') }];
    for (const event of dropped) input.next(event);
    input.next(reply);
    expect(out).toEqual([reply]);
  });

  test('pending outcomes are awaited in request order', async () => {
    const { input, out, transfer } = setup();
    let settle!: (events: readonly SessionEvent[]) => void;
    const outcome = new Promise<readonly SessionEvent[]>((resolve) => (settle = resolve));
    input.next({ type: 'pending', transfer, outcome });
    const bye: SessionEvent = { type: 'reply', reply: { kind: 'bye' } };
    input.next(bye);
    expect(out).toEqual([]);
    settle([{ type: 'committed', transfer, file: { name: 'f' as RemoteName, size: 1, digest: H, mtimeMs: 1 } }]);
    await flush();
    expect(out.map((event) => (event as ReplyEvent).reply.kind)).toEqual(['dataRecv', 'bye']);
  });
});
