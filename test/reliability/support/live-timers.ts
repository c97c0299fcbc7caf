/**
 * Counts the timers of this process that are still live (set and neither fired nor cleared), the
 * unref'd ones included: process.getActiveResourcesInfo() lists only ref'd timers, and the server's
 * guards (stall, idle, storage deadline) are unref'd, so a leaked one would not show there.
 * Install before the server starts; every setTimeout/setInterval made afterwards is counted.
 */
export interface LiveTimers {
  count(): number;
  restore(): void;
}

type AnyFn = (...args: unknown[]) => unknown;

export const trackLiveTimers = (): LiveTimers => {
  const live = new Set<unknown>();
  const g = globalThis as unknown as Record<'setTimeout' | 'setInterval' | 'clearTimeout' | 'clearInterval', AnyFn>;
  const original = { setTimeout: g.setTimeout, setInterval: g.setInterval, clearTimeout: g.clearTimeout, clearInterval: g.clearInterval };
  g.setTimeout = (fn: unknown, ms?: unknown, ...args: unknown[]) => {
    const timer = original.setTimeout((...fired: unknown[]) => {
      live.delete(timer);
      (fn as AnyFn)(...fired);
    }, ms, ...args);
    live.add(timer);
    return timer;
  };
  g.setInterval = (...args: unknown[]) => {
    const timer = original.setInterval(...args);
    live.add(timer);
    return timer;
  };
  g.clearTimeout = (timer: unknown) => {
    live.delete(timer);
    return original.clearTimeout(timer);
  };
  g.clearInterval = (timer: unknown) => {
    live.delete(timer);
    return original.clearInterval(timer);
  };
  return {
    count: () => live.size,
    restore: () => Object.assign(g, original),
  };
};
