import { SETTLED_MS } from '../../src/storage/digest-index';

/**
 * Waits until a file changed just now is old enough, by its ctime, for a digest the server hashes of
 * it to be recorded (DigestIndex.rememberHashed): SETTLED_MS and a little more. Waiting is the only
 * way: no program can set a ctime back, which is why the rule uses it.
 */
export const untilSettled = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, SETTLED_MS + 100));
