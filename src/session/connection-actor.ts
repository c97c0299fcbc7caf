import { Socket } from 'node:net';
import { inject, injectable, optional } from 'inversify';
import type { Logger } from 'pino';
import { EMPTY, NEVER, Observable, Subject, catchError, concat, defer, finalize, merge, of, tap } from 'rxjs';
import type { RxferConfig } from '../config/config.schema';
import { TOKENS } from '../container/tokens';
import { RxferError, toRxferError } from '../errors/rxfer-error';
import { decodeFrames } from '../protocol/decode-frames';
import { FrameDecoder } from '../protocol/frame-decoder';
import { availableHashes } from '../integrity/hash-algorithm';
import { BATCH_LIMITS, PROTOCOL_VERSION } from '../protocol/protocol-limits';
import { formatReply } from '../protocol/reply';
import { composeStages } from '../pipeline/compose-stages';
import { buildOnFirstValue } from '../operators/build-on-first-value';
import type { Stage } from '../pipeline/stage';
import type { StorageAdapter } from '../storage/storage-adapter';
import { SessionContext } from './session-context';
import { ReplyEvent, SessionEvent, replyEvent } from './session-event';
import { socketSource } from './socket-source';
import { NO_OBSERVER, type SessionObserver } from './session-observer';
import { guardInputStalls } from './stall-guard';
import { writeReplies } from './write-replies';

/** How long a closing connection may take to flush its last reply before it is cut. */
const CLOSE_FLUSH_MS = 2000;

const PEER_GONE = new Set(['ECONNRESET', 'EPIPE', 'ERR_STREAM_DESTROYED', 'ERR_STREAM_WRITE_AFTER_END']);

/**
 * One actor per connection: the socket's input becomes one event stream, folded through the
 * injected stages, and the replies are written back in order. Everything the connection owns is
 * released in one `finalize`. An error here ends this connection only; the server never sees it.
 */
@injectable()
export class ConnectionActor {
  /** Sessions still giving back what they held (staging files suspended or deleted, files closed). */
  private readonly disposing = new Set<Promise<void>>();

  constructor(
    @inject(TOKENS.Pipeline) private readonly stages: readonly Stage[],
    @inject(TOKENS.Config) private readonly config: RxferConfig,
    @inject(TOKENS.Logger) private readonly logger: Logger,
    @inject(TOKENS.Storage) private readonly storage: StorageAdapter,
    @inject(TOKENS.SessionObserver) @optional() private readonly observer: SessionObserver = NO_OBSERVER,
  ) {}

  /**
   * Serves `socket` until it closes. `shutdown$` asks the session to wind down at the next request
   * boundary; `abort$` cuts it now (the grace period is over), telling the peer why.
   */
  run(socket: Socket, shutdown$: Observable<void>, abort$: Observable<void> = NEVER): Observable<never> {
    return defer(() => {
      const ctx = new SessionContext(socket, this.config, this.logger, this.observer);
      const { limits } = this.config;
      const decoder = new FrameDecoder(limits.maxLineBytes);
      // The server's signals stop with the peer's input, or the merge would never complete and the
      // session would outlive its client (holding its slot, its staging file and its socket).
      const inputEnded$ = new Subject<void>();
      const input$: Observable<SessionEvent> = merge(
        socketSource(socket, limits.idleTimeoutMs).pipe(
          guardInputStalls(limits, () => decoder.midFrame, ctx.flow),
          decodeFrames(decoder),
          tap({ complete: () => inputEnded$.next(), error: () => inputEnded$.next() }),
        ),
        serverSignals(shutdown$, abort$, inputEnded$),
      );
      // The stages are built on the first event: a connection that has sent nothing holds none of them.
      const events$ = input$.pipe(buildOnFirstValue(() => composeStages(this.stages, ctx)));
      return concat(of(greetingFor(this.config, this.storage)), events$).pipe(
        writeReplies(socket, ctx),
        catchError((err: unknown) => this.fail(socket, ctx, err)),
        finalize(() => {
          closeGracefully(socket);
          const disposed = ctx.dispose().catch((err: unknown) => ctx.log.warn({ err }, 'Releasing the session failed'));
          this.disposing.add(disposed);
          void disposed.finally(() => this.disposing.delete(disposed));
        }),
      );
    });
  }

  /** Resolves once every ended session has released what it held (the server awaits it before it stops). */
  async released(): Promise<void> {
    while (this.disposing.size > 0) await Promise.all([...this.disposing]);
  }

  private fail(socket: Socket, ctx: SessionContext, err: unknown): Observable<never> {
    const code = (err as NodeJS.ErrnoException).code;
    if (code && PEER_GONE.has(code)) {
      ctx.log.debug({ errno: code }, 'Client connection reset');
      return EMPTY;
    }
    const error = toRxferError(err);
    ctx.observer.sessionFailed(ctx, error);
    if (error.code === 'INTERNAL') ctx.log.error({ err }, `Session failed: ${error.message}`);
    else ctx.log.info({ code: error.code }, `Closing session: ${error.code} ${error.message}`);
    // Mid-download the peer is reading data bytes; a reply line there would be taken for data.
    if (!ctx.midBody && socket.writable) socket.write(formatReply({ kind: 'error', code: error.code, message: error.message }));
    if (ctx.midBody) socket.destroy();
    return EMPTY;
  }
}

/**
 * The server's two signals as this session's events, until its input ends: the first `shutdown$`
 * becomes a 'shutdown' event (wind down at the next request boundary), `abort$` an error that ends
 * the session now. One subscription to each, where take/map/takeUntil chains cost a thousand idle
 * connections a few MiB of subscribers.
 */
const serverSignals = (shutdown$: Observable<void>, abort$: Observable<void>, inputEnded$: Observable<void>): Observable<SessionEvent> =>
  new Observable<SessionEvent>((subscriber) => {
    let shutdownSent = false;
    const subscription = inputEnded$.subscribe(() => subscriber.complete());
    subscription.add(
      shutdown$.subscribe(() => {
        if (shutdownSent) return;
        shutdownSent = true;
        subscriber.next({ type: 'shutdown' });
      }),
    );
    subscription.add(
      abort$.subscribe(() => subscriber.error(new RxferError('SHUTTING_DOWN', 'the server stopped before this transfer finished; nothing was committed'))),
    );
    return subscription;
  });

/** The first line of every session: version and capabilities (clients ignore keys they do not know). */
const greetingFor = (config: RxferConfig, storage: StorageAdapter): ReplyEvent =>
  replyEvent({
    kind: 'greeting',
    version: PROTOCOL_VERSION,
    caps: {
      caps: 'upload,addfile,batch,download,resume,list,stat,delete,rename,mkdir,auth,hash,quit',
      // The first is the default; HASH chooses another for the connection.
      hash: availableHashes().join(','),
      'max-line': String(config.limits.maxLineBytes),
      // BATCH: this many small files, and bytes of them, in one request (issue 20).
      'batch-files': String(BATCH_LIMITS.files),
      'batch-bytes': String(BATCH_LIMITS.bytes),
      auth: config.auth.anonymous === 'none' ? 'required' : 'optional',
      // Uploads at least this large are kept when interrupted, for RESUME (absent: none are).
      ...(storage.resumableFromBytes !== undefined && { 'resume-min': String(storage.resumableFromBytes) }),
      // LIST PAGED / LIST AFTER are understood: a folder of any size can be listed (issue 17).
      ...(storage.listsInPages && { list: 'paged' }),
      // LIST FOLDERS / LIST SHALLOW are understood (issue 19: empty folders; issue 17: a one-level ls).
      ...(storage.listsFolders && { 'list-options': 'folders,shallow' }),
    },
  });

/** Ends our side after the last reply is flushed; a peer that will not read it is cut after a while. */
const closeGracefully = (socket: Socket): void => {
  if (socket.destroyed) return;
  socket.end();
  setTimeout(() => socket.destroy(), CLOSE_FLUSH_MS).unref();
};
