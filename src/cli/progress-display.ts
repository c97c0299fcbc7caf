import { formatBytes, formatRate } from './format-units';

export interface ProgressDisplay {
  update(doneBytes: number, totalBytes: number): void;
  stop(): void;
}

const NO_PROGRESS: ProgressDisplay = { update: () => undefined, stop: () => undefined };

/**
 * A progress bar with rate and ETA on stderr, only for a person watching: not with --quiet and not
 * when stderr is a pipe or a file, where redraw sequences would only be noise. cli-progress is loaded
 * here, on first use, so that `rxfer --help` does not pay for it.
 */
export const createProgressDisplay = (label: string, quiet: boolean): ProgressDisplay => {
  if (quiet || !process.stderr.isTTY) return NO_PROGRESS;
  const { SingleBar } = require('cli-progress') as typeof import('cli-progress');
  const bar = new SingleBar({
    format: `${label} {bar} {percentage}% | {done} / {size} | {rate} | ETA {eta_formatted}`,
    barsize: 24,
    hideCursor: true,
    clearOnComplete: true,
    etaBuffer: 64,
    stream: process.stderr,
  });
  const startedAt = Date.now();
  let started = false;
  return {
    update(doneBytes, totalBytes) {
      const payload = {
        done: formatBytes(doneBytes),
        size: formatBytes(totalBytes),
        rate: formatRate(doneBytes, Date.now() - startedAt),
      };
      if (!started) {
        started = true;
        bar.start(totalBytes, doneBytes, payload);
      } else bar.update(doneBytes, payload);
    },
    stop() {
      if (started) bar.stop();
    },
  };
};
