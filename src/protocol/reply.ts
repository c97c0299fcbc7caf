import { ErrorCode, isErrorCode } from '../errors/error-code';
import { RxferError } from '../errors/rxfer-error';
import { HashAlgorithm, isHashAlgorithm } from '../integrity/hash-algorithm';
import { DIGEST_HEX, parseByteCount } from './protocol-limits';

/** Every line the server can send, as a value. `formatReply` and `parseReply` are inverses. */
export type Reply =
  | { readonly kind: 'greeting'; readonly version: string; readonly caps: Readonly<Record<string, string>> }
  | { readonly kind: 'fileRecv' }
  | { readonly kind: 'dataRecv'; readonly size: number; readonly digest: string }
  /** `size` and `digest` are the whole file's; with `offset`, only the bytes after it follow. */
  | { readonly kind: 'downloadReady'; readonly size: number; readonly digest: string; readonly offset?: number }
  /** RESUME: the server keeps `bytes` bytes of an interrupted upload, whose digest is `digest`. */
  | { readonly kind: 'partial'; readonly bytes: number; readonly digest: string }
  | { readonly kind: 'notFound'; readonly message: string }
  | { readonly kind: 'error'; readonly code: ErrorCode; readonly message: string }
  | { readonly kind: 'authOk'; readonly user: string; readonly role: string }
  /** HASH accepted: later digests on this connection are in `hash`. */
  | { readonly kind: 'hashChosen'; readonly hash: HashAlgorithm }
  /** A LIST answer: `bytes` bytes of listing lines (see listing.ts) follow, `count` entries. */
  /** `more`: a page of a paged LIST with more after it (ask again with LIST AFTER its last name). */
  | { readonly kind: 'listing'; readonly bytes: number; readonly count: number; readonly more?: boolean }
  /** STAT: a file or a folder; `digest` where known without reading a large file. */
  | { readonly kind: 'stat'; readonly type: 'file' | 'folder'; readonly size: number; readonly digest?: string; readonly mtimeMs: number }
  /** DELETE, RENAME, MKDIR done. */
  | { readonly kind: 'done'; readonly what: 'deleted' | 'renamed' | 'created' }
  | { readonly kind: 'bye' };

/** Replies carry human messages on one line: newlines and other control characters are flattened. */
const oneLine = (text: string): string => text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ').trim();

export const formatReply = (reply: Reply): string => {
  switch (reply.kind) {
    case 'greeting': {
      const caps = Object.entries(reply.caps).map(([key, value]) => `${key}=${value}`);
      return ['OK', reply.version, ...caps].join(' ') + '\n';
    }
    case 'fileRecv':
      return 'OK file recv\n';
    case 'dataRecv':
      return `OK file data recv ${reply.size} ${reply.digest}\n`;
    case 'downloadReady':
      return reply.offset === undefined ? `OK ${reply.size} ${reply.digest}\n` : `OK ${reply.size} ${reply.digest} from ${reply.offset}\n`;
    case 'partial':
      return `OK partial ${reply.bytes} ${reply.digest}\n`;
    case 'notFound':
      return `NOT FOUND ${oneLine(reply.message)}\n`;
    case 'error':
      return `ERR ${reply.code} ${oneLine(reply.message)}\n`;
    case 'listing':
      return `OK list ${reply.bytes} ${reply.count}${reply.more ? ' more' : ''}\n`;
    case 'hashChosen':
      return `OK hash ${reply.hash}\n`;
    case 'authOk':
      return `OK auth ${reply.user} ${reply.role}\n`;
    case 'stat':
      return `OK stat ${reply.type} ${reply.size} ${reply.digest ?? '-'} ${Math.floor(reply.mtimeMs)}\n`;
    case 'done':
      return `OK ${reply.what}\n`;
    case 'bye':
      return 'OK bye\n';
  }
};

const violation = (line: string): RxferError =>
  new RxferError('PROTOCOL_VIOLATION', `unexpected reply from server: ${JSON.stringify(line.slice(0, 200))}`);

/** Parses one reply line (without its newline). Anything outside protocol v1 is PROTOCOL_VIOLATION. */
export const parseReply = (line: string): Reply => {
  if (line === 'OK file recv') return { kind: 'fileRecv' };
  if (line === 'OK bye') return { kind: 'bye' };
  if (line === 'OK deleted' || line === 'OK renamed' || line === 'OK created') return { kind: 'done', what: line.slice(3) as 'deleted' };
  if (line.startsWith('NOT FOUND')) return { kind: 'notFound', message: line.slice('NOT FOUND'.length).trim() };

  const words = line.split(' ');
  if (words[0] === 'ERR') {
    const code = words[1] ?? '';
    if (!isErrorCode(code)) throw violation(line);
    return { kind: 'error', code, message: words.slice(2).join(' ') };
  }
  if (words[0] !== 'OK') throw violation(line);

  if (words[1]?.startsWith('rxfer/')) {
    const caps: Record<string, string> = {};
    for (const word of words.slice(2)) {
      const eq = word.indexOf('=');
      if (eq > 0) caps[word.slice(0, eq)] = word.slice(eq + 1);
    }
    return { kind: 'greeting', version: words[1], caps };
  }
  const sized = (sizeText: string | undefined, digest: string | undefined) => {
    const size = parseByteCount(sizeText ?? '');
    if (size === undefined || !digest || !DIGEST_HEX.test(digest)) throw violation(line);
    return { size, digest: digest.toLowerCase() };
  };
  if (words.length === 6 && words[1] === 'file' && words[2] === 'data' && words[3] === 'recv') {
    return { kind: 'dataRecv', ...sized(words[4], words[5]) };
  }
  if (words.length === 3 && words[1] === 'hash') {
    const hash = words[2]!;
    if (!isHashAlgorithm(hash)) throw violation(line);
    return { kind: 'hashChosen', hash };
  }
  if (words.length === 4 && words[1] === 'auth') return { kind: 'authOk', user: words[2]!, role: words[3]! };
  if (words.length === 6 && words[1] === 'stat' && (words[2] === 'file' || words[2] === 'folder')) {
    const size = parseByteCount(words[3]!);
    const mtimeMs = Number(words[5]);
    if (size === undefined || !Number.isFinite(mtimeMs) || (words[4] !== '-' && !DIGEST_HEX.test(words[4]!))) throw violation(line);
    return { kind: 'stat', type: words[2], size, mtimeMs, ...(words[4] !== '-' && { digest: words[4]!.toLowerCase() }) };
  }
  if ((words.length === 4 || (words.length === 5 && words[4] === 'more')) && words[1] === 'list') {
    const bytes = parseByteCount(words[2]!);
    const count = parseByteCount(words[3]!);
    if (bytes === undefined || count === undefined) throw violation(line);
    return { kind: 'listing', bytes, count, ...(words.length === 5 && { more: true }) };
  }
  if (words.length === 4 && words[1] === 'partial') {
    const { size: bytes, digest } = sized(words[2], words[3]);
    return { kind: 'partial', bytes, digest };
  }
  if (words.length === 3) return { kind: 'downloadReady', ...sized(words[1], words[2]) };
  if (words.length === 5 && words[3] === 'from') {
    const file = sized(words[1], words[2]);
    const offset = parseByteCount(words[4]!);
    if (offset === undefined || offset > file.size) throw violation(line);
    return { kind: 'downloadReady', ...file, offset };
  }
  throw violation(line);
};

