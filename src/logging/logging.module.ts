import { ContainerModule } from 'inversify';
import { AuditLogObserver } from './audit-log.observer';

/** The audit log watches sessions as metrics do, through the SessionObserver hook. */
export const loggingModule = new ContainerModule(({ bind }) => {
  bind(AuditLogObserver).toSelf().inSingletonScope();
});
