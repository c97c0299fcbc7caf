import type { ServiceIdentifier } from 'inversify';
import type { Logger } from 'pino';
import type { RxferConfig } from '../config/config.schema';
import type { Stage } from '../pipeline/stage';
import type { ConnectionActor } from '../session/connection-actor';
import type { StorageAdapter } from '../storage/storage-adapter';
import type { Transport } from '../transport/transport';
import type { RxferServer } from '../server/rxfer-server';
import type { UserDirectory } from '../auth/user-directory';
import type { TransferSlots } from '../auth/transfer-slots';
import type { QuotaLedger } from '../auth/quota-ledger';
import type { SessionObserver } from '../session/session-observer';
import type { RxferMetrics } from '../metrics/rxfer-metrics';
import type { OpsHttpServer } from '../metrics/ops-http.server';
import type { StorageProbe } from '../metrics/storage-probe';

/** Every injectable role, as a typed symbol. Interfaces live beside their concept, not here. */
export const TOKENS = {
  Config: Symbol('Config') as ServiceIdentifier<RxferConfig>,
  Logger: Symbol('Logger') as ServiceIdentifier<Logger>,
  Storage: Symbol('Storage') as ServiceIdentifier<StorageAdapter>,
  Transport: Symbol('Transport') as ServiceIdentifier<Transport>,
  /** The pipeline's stages, in order. */
  Pipeline: Symbol('Pipeline') as ServiceIdentifier<readonly Stage[]>,
  ConnectionActor: Symbol('ConnectionActor') as ServiceIdentifier<ConnectionActor>,
  Server: Symbol('Server') as ServiceIdentifier<RxferServer>,
  UserDirectory: Symbol('UserDirectory') as ServiceIdentifier<UserDirectory>,
  TransferSlots: Symbol('TransferSlots') as ServiceIdentifier<TransferSlots>,
  QuotaLedger: Symbol('QuotaLedger') as ServiceIdentifier<QuotaLedger>,
  /** Everyone who watches sessions (metrics, the audit log), as one observer. */
  SessionObserver: Symbol('SessionObserver') as ServiceIdentifier<SessionObserver>,
  /** The process's Prometheus registry and the rxfer_* metrics in it. */
  Metrics: Symbol('Metrics') as ServiceIdentifier<RxferMetrics>,
  /** The HTTP listener for /metrics, /healthz and /readyz. */
  OpsHttp: Symbol('OpsHttp') as ServiceIdentifier<OpsHttpServer>,
  /** A cheap "does storage answer?" check for /healthz. */
  StorageProbe: Symbol('StorageProbe') as ServiceIdentifier<StorageProbe>,
} as const;
