import 'reflect-metadata';
import { Container } from 'inversify';
import type { Logger } from 'pino';
import { authModule } from '../auth/auth.module';
import { RxferConfig } from '../config/config.schema';
import { AuditLogObserver } from '../logging/audit-log.observer';
import { loggingModule } from '../logging/logging.module';
import { MetricsObserver } from '../metrics/metrics.observer';
import { metricsModule } from '../metrics/metrics.module';
import { pipelineModule } from '../pipeline/pipeline.module';
import { serverModule } from '../server/server.module';
import { SessionObserver, fanOut } from '../session/session-observer';
import { sessionModule } from '../session/session.module';
import { storageModule } from '../storage/storage.module';
import { transportModule } from '../transport/transport.module';
import { TOKENS } from './tokens';

/** The composition root's container: config and logger as values, one module per folder. */
export const buildContainer = (config: RxferConfig, logger: Logger): Container => {
  const container = new Container();
  container.bind(TOKENS.Config).toConstantValue(config);
  container.bind(TOKENS.Logger).toConstantValue(logger);
  container.load(transportModule, storageModule, authModule, pipelineModule, sessionModule, serverModule, metricsModule, loggingModule);
  // Who watches sessions, written down once (as the pipeline's stages are): a new concern that
  // only watches (tracing, say) is another observer here, and the actor does not change.
  container
    .bind(TOKENS.SessionObserver)
    .toResolvedValue((...observers: SessionObserver[]) => fanOut(observers), [MetricsObserver, AuditLogObserver])
    .inSingletonScope();
  return container;
};
