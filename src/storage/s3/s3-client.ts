import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { S3Client } from '@aws-sdk/client-s3';
import type { S3Config } from '../../config/config.schema';

/**
 * Sockets to the object store per process. Each download in progress holds one while it streams,
 * and each upload up to `partsInFlight`; the SDK's default of 50 would queue the 51st transfer
 * behind the others' whole files.
 */
const MAX_SOCKETS = 512;

/**
 * The SDK client, set for Ceph RGW 16 as well as AWS (../shared/s3/README.md, "Pitfalls"):
 * checksums only when an operation requires them (the default sends streaming bodies as aws-chunked
 * with a CRC32 trailer, which RGW 16 refuses with 411), and path-style URLs unless told otherwise.
 * Credentials come from the SDK's default chain only.
 */
export const createS3Client = (config: S3Config): S3Client => {
  const agentOptions = { keepAlive: true, maxSockets: MAX_SOCKETS };
  return new S3Client({
    ...(config.endpoint !== undefined && { endpoint: config.endpoint }),
    region: config.region,
    forcePathStyle: config.forcePathStyle,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: config.maxAttempts,
    // Options, not a handler instance: the SDK builds its own NodeHttpHandler from them.
    requestHandler: { httpAgent: new HttpAgent(agentOptions), httpsAgent: new HttpsAgent(agentOptions), connectionTimeout: 10_000 },
  });
};
