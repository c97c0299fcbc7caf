import type { Logger } from 'pino';
import { RxferConfig } from '../config/config.schema';
import { ConfigOverrides, loadConfig } from '../config/load-config';

/** The sections SIGHUP applies to a running server; the others need a restart. */
const LIVE_SECTIONS = ['auth', 'limits'] as const;

/** Keys whose values differ between two config values ("server.port", "auth.users": arrays count as one value). */
export const changedKeys = (before: unknown, after: unknown, path = ''): string[] => {
  const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
  if (isObject(before) && isObject(after)) {
    const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
    return [...keys].flatMap((key) => changedKeys(before[key], after[key], path ? `${path}.${key}` : key));
  }
  return JSON.stringify(before) === JSON.stringify(after) ? [] : [path];
};

export type ReloadResult = { readonly applied: true; readonly changed: string[]; readonly ignored: string[] } | { readonly applied: false; readonly reason: string };

/**
 * SIGHUP: reads the config file again and, if it is valid, puts its users (`auth`) and `limits` in
 * place in the running config, which every component reads when it needs a value: new connections
 * and AUTHs see them at once, connections and transfers in flight carry on. An invalid file changes
 * nothing (the message names the key). Changes elsewhere (listen address, storage, TLS, metrics)
 * need a restart and are reported as ignored. `log.level` applies at once too.
 */
export const reloadConfig = (live: RxferConfig, configPath: string | undefined, overrides: ConfigOverrides, logger: Logger): ReloadResult => {
  if (configPath === undefined) {
    const reason = 'no config file was given (--config): nothing to reload';
    logger.warn(`SIGHUP: ${reason}`);
    return { applied: false, reason };
  }
  let next: RxferConfig;
  try {
    next = loadConfig({ configPath, overrides });
  } catch (err) {
    const reason = (err as Error).message;
    logger.error({ code: 'CONFIG_INVALID' }, `SIGHUP: reload refused, the running config stays: ${reason}`);
    return { applied: false, reason };
  }
  const changed = LIVE_SECTIONS.flatMap((section) => changedKeys(live[section], next[section], section));
  const ignored = changedKeys({ ...live, auth: undefined, limits: undefined, log: undefined }, { ...next, auth: undefined, limits: undefined, log: undefined });
  for (const section of LIVE_SECTIONS) (live as Record<(typeof LIVE_SECTIONS)[number], unknown>)[section] = next[section];
  if (live.log.level !== next.log.level) {
    changed.push('log.level');
    live.log.level = next.log.level;
    logger.level = next.log.level;
  }
  // Token hashes are secrets of a kind: name the users, never their hashes.
  const names = (config: RxferConfig) => config.auth.users.map((user) => user.name);
  logger.info(
    { changed, ignored, users: names(live) },
    `SIGHUP: reloaded ${configPath}: ${live.auth.users.length} users, ${changed.length} settings changed`,
  );
  if (ignored.length > 0) logger.warn({ ignored }, `SIGHUP: these settings need a restart and were not applied: ${ignored.join(', ')}`);
  return { applied: true, changed, ignored };
};
