import { z } from 'zod';

const GiB = 1024 ** 3;

/**
 * The whole configuration, with safe defaults. Objects are strict so that a misspelt key is an error
 * that names it, rather than a setting silently ignored.
 */
export const configSchema = z
  .object({
    server: z
      .object({
        host: z.string().min(1).default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(9000),
        /** Connections beyond this get `ERR TOO_MANY_CONNECTIONS` instead of the greeting. */
        maxConnections: z.number().int().min(1).max(100_000).default(256),
        /** On SIGINT/SIGTERM, transfers in flight get this long to finish before they are cut. */
        shutdownGraceMs: z.number().int().min(0).max(600_000).default(10_000),
      })
      .strict()
      .prefault({}),
    storage: z
      .object({
        kind: z.enum(['local', 'memory']).default('local'),
        /** Folder for `local` storage; relative paths are taken from the working directory. */
        root: z.string().min(1).default('./data'),
      })
      .strict()
      .prefault({}),
    limits: z
      .object({
        /** Longest control line (command, name, trailer) in bytes, newline included. */
        maxLineBytes: z.number().int().min(256).max(65_536).default(4096),
        /** Largest file a client may declare. */
        maxFileBytes: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(1024 * GiB),
        /** A connection with no traffic in either direction for this long is closed. */
        idleTimeoutMs: z.number().int().min(1000).max(86_400_000).default(300_000),
      })
      .strict()
      .prefault({}),
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type RxferConfig = z.infer<typeof configSchema>;
/** What a config file may contain: every key optional. */
export type RxferConfigInput = z.input<typeof configSchema>;
