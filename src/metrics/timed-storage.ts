import type { Histogram } from 'prom-client';
import type { StagedWrite, StorageAdapter } from '../storage/storage-adapter';

/** The adapter's asynchronous calls, the only values the `op` label takes (plus a write's own). */
const ADAPTER_OPS = new Set<string>([
  'init',
  'close',
  'openRead',
  'sizeOf',
  'beginWrite',
  'list',
  'stat',
  'remove',
  'rename',
  'makeFolder',
  'usage',
  'partialUpload',
  'expirePartialUploads',
]);
const WRITE_OPS = new Set<string>(['commit', 'abort', 'suspend']);

type OpHistogram = Histogram<'op'>;

const timed = <T>(histogram: OpHistogram, op: string, call: () => T): T => {
  const stop = histogram.startTimer({ op });
  let result: T;
  try {
    result = call();
  } catch (err) {
    stop();
    throw err;
  }
  if (!(result instanceof Promise)) {
    stop();
    return result;
  }
  return result.then(
    (value: unknown) => {
      stop();
      return value;
    },
    (err: unknown) => {
      stop();
      throw err;
    },
  ) as T;
};

/** Wraps `target`'s methods named in `ops` so each call is timed; everything else passes through untouched. */
const timeMethods = <T extends object>(target: T, ops: ReadonlySet<string>, histogram: OpHistogram, wrapResult?: (op: string, value: unknown) => unknown): T =>
  new Proxy(target, {
    get(object, property) {
      // `object` as the receiver: getters that read the adapter's own fields keep working.
      const value: unknown = Reflect.get(object, property, object);
      if (typeof property !== 'string' || !ops.has(property) || typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const result = timed(histogram, property, () => (value as (...a: unknown[]) => unknown).apply(object, args));
        return wrapResult && result instanceof Promise ? result.then((resolved) => wrapResult(property, resolved)) : result;
      };
    },
  });

/**
 * The configured storage adapter, whatever its kind (local disk, S3, memory), with each call timed
 * into rxfer_storage_operation_seconds{op}: a slow disk or S3 endpoint shows there. A write's
 * commit, abort and suspend are timed too (a commit is the fsync and rename, or the S3 completion).
 * Bound by the container around TOKENS.Storage, so neither the adapters nor the pipeline know of it.
 */
export const timeStorage = (adapter: StorageAdapter, histogram: OpHistogram): StorageAdapter =>
  timeMethods(adapter, ADAPTER_OPS, histogram, (op, value) => (op === 'beginWrite' ? timeMethods(value as StagedWrite, WRITE_OPS, histogram) : value));
