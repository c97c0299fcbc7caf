import 'reflect-metadata';
import { Container } from 'inversify';
import type { Logger } from 'pino';
import { authModule } from '../auth/auth.module';
import { RxferConfig } from '../config/config.schema';
import { pipelineModule } from '../pipeline/pipeline.module';
import { serverModule } from '../server/server.module';
import { sessionModule } from '../session/session.module';
import { storageModule } from '../storage/storage.module';
import { transportModule } from '../transport/transport.module';
import { TOKENS } from './tokens';

/** The composition root's container: config and logger as values, one module per folder. */
export const buildContainer = (config: RxferConfig, logger: Logger): Container => {
  const container = new Container();
  container.bind(TOKENS.Config).toConstantValue(config);
  container.bind(TOKENS.Logger).toConstantValue(logger);
  container.load(transportModule, storageModule, authModule, pipelineModule, sessionModule, serverModule);
  return container;
};
