import type { Reply } from '../protocol/reply';
import type { Connection } from './connection';
import { wireName } from './request-header';
import { replyError } from './expect-reply';
import type { RequestTurn } from './request-lanes';

export type FileOp = 'STAT' | 'DELETE' | 'RENAME' | 'MKDIR';

/** What a successful STAT reports. */
export interface RemoteStatus {
  readonly type: 'file' | 'folder';
  readonly size: number;
  readonly mtimeMs: number;
  readonly digest?: string;
}

/** STAT, DELETE, RENAME or MKDIR: the command line, its name line(s), one reply. */
export const fileOp = async (conn: Connection, turn: RequestTurn, verb: FileOp, names: readonly string[]): Promise<Reply> => {
  const lines = names.map((name) => `${wireName(name)}\n`).join('');
  await conn.send(`${verb}\n${lines}`).catch((err: unknown) => conn.explainLoss(err, turn.receiveTurn));
  turn.doneSending();
  await turn.receiveTurn;
  const reply = await conn.readReply();
  const expected = verb === 'STAT' ? 'stat' : 'done';
  if (reply.kind !== expected) throw replyError(conn, reply, verb);
  return reply;
};
