import { ContainerModule } from 'inversify';
import { TOKENS } from '../container/tokens';
import { MetricsObserver } from './metrics.observer';
import { OpsHttpServer } from './ops-http.server';
import { RxferMetrics } from './rxfer-metrics';
import { storageProbeFor } from './storage-probe';
import { timeStorage } from './timed-storage';

/**
 * Metrics are bound here and nowhere else: the registry, the observer sessions report to, the
 * operations listener, and a timing wrapper put around whatever storage adapter is bound (an
 * activation hook, so a storage rebound by a test or an embedder is timed too).
 */
export const metricsModule = new ContainerModule(({ bind, onActivation }) => {
  // One registry per container (not per module): two servers in one process count apart.
  bind(TOKENS.Metrics).toResolvedValue(() => new RxferMetrics(), []).inSingletonScope();
  bind(MetricsObserver).toSelf().inSingletonScope();
  bind(TOKENS.StorageProbe).toResolvedValue(storageProbeFor, [TOKENS.Config]).inSingletonScope();
  bind(TOKENS.OpsHttp).to(OpsHttpServer).inSingletonScope();
  onActivation(TOKENS.Storage, (context, storage) => timeStorage(storage, context.get(TOKENS.Metrics).storageOperation));
});
