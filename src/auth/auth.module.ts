import { ContainerModule } from 'inversify';
import { TOKENS } from '../container/tokens';
import { QuotaLedger } from './quota-ledger';
import { TransferSlots } from './transfer-slots';
import { UserDirectory } from './user-directory';

export const authModule = new ContainerModule(({ bind }) => {
  bind(TOKENS.UserDirectory).to(UserDirectory).inSingletonScope();
  bind(TOKENS.TransferSlots).to(TransferSlots).inSingletonScope();
  bind(TOKENS.QuotaLedger).to(QuotaLedger).inSingletonScope();
});
