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

const MiB = 1024 ** 2;

/**
 * `storage.kind: "s3"`: an S3 bucket (Ceph RGW, AWS, …) that several rxfer servers may share.
 * Credentials are never read from here: the AWS SDK's own chain (AWS_ACCESS_KEY_ID/
 * AWS_SECRET_ACCESS_KEY, a profile, instance roles) supplies them, so config files hold no secret.
 */
const s3Schema = z
  .object({
    /** The S3 endpoint, e.g. a Ceph radosgw `http://127.0.0.1:7480`; unset means AWS itself. */
    endpoint: z.url({ protocol: /^https?$/ }).optional(),
    /** Ceph RGW creates buckets only in `us-east-1` (or `default`); objects accept any region. */
    region: z.string().min(1).default('us-east-1'),
    bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'expected an S3 bucket name (3–63 lowercase letters, digits, "." or "-")').default('rxfer'),
    /** Keys live under this prefix ("" or ending in "/"), so one bucket can serve several trees. */
    prefix: z
      .string()
      .refine((prefix) => prefix === '' || (prefix.endsWith('/') && !prefix.startsWith('/') && !prefix.includes('//')), {
        message: 'expected "" or a key prefix ending in "/", such as "rxfer/" (no leading "/")',
      })
      .default(''),
    /** Path-style URLs (`endpoint/bucket/key`): what RGW needs unless `rgw dns name` is set. */
    forcePathStyle: z.boolean().default(true),
    /** Create the bucket at start-up if it is missing (otherwise a missing bucket fails start-up). */
    createBucket: z.boolean().default(false),
    /** Uploads go out in parts of this size (larger for files that would need more than 10,000 parts). */
    partBytes: z.number().int().min(5 * MiB).max(5 * 1024 * MiB).default(16 * MiB),
    /** Parts of one upload held in memory at once (being filled or sent): its memory is partBytes × this. */
    partsInFlight: z.number().int().min(1).max(64).default(4),
    /** Part buffers of all uploads of the process together; uploads wait (their sockets held) beyond it. */
    maxBufferedBytes: z.number().int().min(5 * MiB).max(64 * 1024 * MiB).default(256 * MiB),
    /** Tries per S3 request (the SDK's backoff between them) before it fails with STORAGE_FAILED. */
    maxAttempts: z.number().int().min(1).max(20).default(4),
  })
  .strict()
  .refine((s3) => s3.maxBufferedBytes >= s3.partBytes, { message: 'maxBufferedBytes must be at least partBytes', path: ['maxBufferedBytes'] });

export type S3Config = z.infer<typeof s3Schema>;

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
        kind: z.enum(['local', 'memory', 's3']).default('local'),
        /** Folder for `local` storage; relative paths are taken from the working directory. */
        root: z.string().min(1).default('./data'),
        /** Interrupted uploads are kept this long after their last byte for a resume, then deleted. */
        partialExpiryMs: z.number().int().min(60_000).max(365 * 86_400_000).default(86_400_000),
        /** For `kind: "s3"`. */
        s3: s3Schema.prefault({}),
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
    /**
     * The operations listener: GET /metrics (Prometheus), /healthz, /readyz. Off while `port` is
     * null (the default). Keep it on a private address: it needs no token.
     */
    metrics: z
      .object({
        host: z.string().min(1).default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).nullable().default(null),
      })
      .strict()
      .prefault({}),
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
        /**
         * `json` (one object a line, for shipping) or `pretty` (readable lines). Unset: pretty when
         * stdout is a terminal, JSON otherwise.
         */
        format: z.enum(['json', 'pretty']).optional(),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type RxferConfig = z.infer<typeof configSchema>;
/** What a config file may contain: every key optional. */
export type RxferConfigInput = z.input<typeof configSchema>;
