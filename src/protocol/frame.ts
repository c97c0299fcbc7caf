import { RxferError } from '../errors/rxfer-error';
import { BatchEntry, Command, Trailer } from './command';

/**
 * What the decoder makes of the byte stream. `name` stays raw bytes so that invalid UTF-8 can be
 * refused rather than silently replaced.
 */
export type Frame =
  | { readonly type: 'command'; readonly command: Command }
  | { readonly type: 'name'; readonly raw: Buffer }
  | { readonly type: 'chunk'; readonly bytes: Buffer }
  | { readonly type: 'trailer'; readonly trailer: Trailer }
  /** One whole file of a BATCH: its entry line, its name line and its bytes (copied, at most BATCH_LIMITS.bytes). */
  | ({ readonly type: 'fileInBatch'; readonly raw: Buffer; readonly bytes: Buffer } & BatchEntry)
  /** The byte stream cannot be followed any further; the connection must close. */
  | { readonly type: 'protocolError'; readonly error: RxferError };
