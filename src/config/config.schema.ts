import { z } from 'zod';
import { TOKEN_HASH_PATTERN } from '../auth/token';
import { ROLES } from '../auth/user';
import { parseRemoteName } from '../protocol/remote-name';

const GiB = 1024 ** 3;

/** A user's folder inside the storage: '' (all of it) or a name that would pass on the wire. */
const rootFolder = z.string().refine(
  (root) => {
    if (root === '') return true;
    try {
      parseRemoteName(root);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'expected "" or a relative folder such as "alice" or "teams/ops" (no "..", no leading "/")' },
);

const userSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'expected 1–64 letters, digits, "_" or "-"'),
    tokenHash: z.string().regex(TOKEN_HASH_PATTERN, 'expected a hash printed by `rxfer token`'),
    role: z.enum(ROLES).default('write'),
    root: rootFolder,
    /** Bytes this user may store, staging data included. */
    quotaBytes: z.number().int().min(0).optional(),
  })
  .strict();

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
        /** Connections from one address beyond this get `ERR TOO_MANY_CONNECTIONS`. */
        maxConnectionsPerIp: z.number().int().min(1).max(100_000).default(32),
        /** Serve TLS (1.2+, 1.3 preferred) with this certificate chain and key (PEM files). */
        tls: z
          .object({
            cert: z.string().min(1),
            key: z.string().min(1),
            minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
          })
          .strict()
          .optional(),
      })
      .strict()
      .prefault({}),
    storage: z
      .object({
        kind: z.enum(['local', 'memory']).default('local'),
        /** Folder for `local` storage; relative paths are taken from the working directory. */
        root: z.string().min(1).default('./data'),
        /** Interrupted uploads are kept this long after their last byte for a resume, then deleted. */
        partialExpiryMs: z.number().int().min(60_000).max(365 * 86_400_000).default(86_400_000),
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
        /**
         * A frame in progress (a half-sent line, an upload's data, a download the peer is not reading)
         * that moves fewer than `minBytesPerSecond` over this window is cut with `ERR STALLED`.
         */
        stallTimeoutMs: z.number().int().min(500).max(3_600_000).default(30_000),
        minBytesPerSecond: z.number().int().min(0).default(1024),
        /** Most files one LIST answers with (more is TOO_LARGE: list a narrower folder). */
        maxListEntries: z.number().int().min(1).max(10_000_000).default(100_000),
        /** Uploads and downloads one user may have in progress at once, over all connections. */
        maxTransfersPerUser: z.number().int().min(1).max(10_000).default(64),
      })
      .strict()
      .prefault({}),
    auth: z
      .object({
        /**
         * What clients that send no AUTH may do: `none`, `read` or `write`. Unset, it is `write`
         * while no users are configured (a private server, as the original protocol had) and
         * `none` as soon as there are users.
         */
        anonymous: z.enum(['none', 'read', 'write']).optional(),
        /** The anonymous user's folder inside the storage. */
        anonymousRoot: rootFolder.default(''),
        users: z.array(userSchema).default([]),
      })
      .strict()
      .prefault({})
      .refine((auth) => new Set(auth.users.map((user) => user.name)).size === auth.users.length, { message: 'user names must be unique', path: ['users'] })
      .transform((auth) => ({ ...auth, anonymous: auth.anonymous ?? (auth.users.length > 0 ? 'none' : 'write') })),
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
