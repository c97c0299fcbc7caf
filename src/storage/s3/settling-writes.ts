import type { StagedWrite } from '../storage-adapter';

/**
 * The last steps of uploads (commit, abort, suspend) still talking to S3. A stopping server suspends
 * its uploads as their connections end; their manifests must reach the bucket as `kept` before the
 * SDK client is destroyed, or no other server could resume them. close() waits for these.
 */
export class SettlingWrites {
  private readonly steps = new Set<Promise<unknown>>();

  /** `staged`, with its last steps counted until they settle. */
  track(staged: StagedWrite): StagedWrite {
    const step = <T>(promise: Promise<T>): Promise<T> => {
      this.steps.add(promise);
      void promise.finally(() => this.steps.delete(promise)).catch(() => undefined);
      return promise;
    };
    return {
      sink: staged.sink,
      resumed: staged.resumed,
      commit: (verified) => step(staged.commit(verified)),
      abort: () => step(staged.abort()),
      suspend: () => step(staged.suspend()),
    };
  }

  /** Resolves once every step in progress settled, or after `maxMs`. */
  async drain(maxMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, maxMs)));
    await Promise.race([Promise.allSettled([...this.steps]), deadline]);
    clearTimeout(timer);
  }
}
