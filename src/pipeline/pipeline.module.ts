import { ContainerModule } from 'inversify';
import { TOKENS } from '../container/tokens';
import { Stage } from './stage';
import { AccumulateDataStage } from './stages/accumulate-data.stage';
import { AdmitRequestsStage } from './stages/admit-requests.stage';
import { AuthenticateStage } from './stages/authenticate.stage';
import { EmitAckStage } from './stages/emit-ack.stage';
import { FileOpsStage } from './stages/file-ops.stage';
import { ParseCommandStage } from './stages/parse-command.stage';
import { ResolveFilenameStage } from './stages/resolve-filename.stage';
import { StoreBatchStage } from './stages/store-batch.stage';
import { WriteFileStage } from './stages/write-file.stage';

/**
 * The pipeline, written down once. A new concern (resume offsets, auth, quotas, metrics) is a new
 * stage bound here and slotted into this list; the actor does not change.
 *   admit-requests → parse-command → authenticate → resolve-filename → file-ops → store-batch → accumulate-data → write-file → emit-ack
 * admit-requests comes first so that a request beyond the connection's budget waits before any
 * stage has taken anything for it.
 * file-ops and store-batch (a BATCH's files) come after resolve-filename so that all three claim names
 * in request order (resolve-filename may be awaiting storage with later events queued behind it).
 * (the actor then writes the replies). emit-ack comes after write-file because the final ack
 * reports what write-file committed.
 */
export const pipelineModule = new ContainerModule(({ bind }) => {
  bind(AdmitRequestsStage).toSelf().inSingletonScope();
  bind(ParseCommandStage).toSelf().inSingletonScope();
  bind(AuthenticateStage).toSelf().inSingletonScope();
  bind(FileOpsStage).toSelf().inSingletonScope();
  bind(ResolveFilenameStage).toSelf().inSingletonScope();
  bind(StoreBatchStage).toSelf().inSingletonScope();
  bind(AccumulateDataStage).toSelf().inSingletonScope();
  bind(WriteFileStage).toSelf().inSingletonScope();
  bind(EmitAckStage).toSelf().inSingletonScope();
  bind(TOKENS.Pipeline)
    .toResolvedValue((...stages: Stage[]): readonly Stage[] => stages, [AdmitRequestsStage, ParseCommandStage, AuthenticateStage, ResolveFilenameStage, FileOpsStage, StoreBatchStage, AccumulateDataStage, WriteFileStage, EmitAckStage])
    .inSingletonScope();
});
