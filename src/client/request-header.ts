import { RxferError } from '../errors/rxfer-error';
import type { ResumePoint } from '../protocol/command';
import { parseRemoteName } from '../protocol/remote-name';
import type { UploadMode } from './client-options';

/**
 * A name as it goes on the wire. It is one line, so a newline in it would desynchronise the session;
 * the server's own rules are checked here too, so a name it would refuse costs no round trip (and no
 * closed connection for owed upload data). Names are sent in Unicode NFC, which is the only spelling
 * the server accepts: a name typed on macOS or read from its file system may arrive decomposed
 * (NFD), and must reach the same file as the same name typed elsewhere. Every request that sends a name
 * must send it through here.
 */
export const wireName = (remoteName: string): string => parseRemoteName(remoteName.normalize('NFC'));

const from = (resume: ResumePoint | undefined): string => (resume ? ` FROM ${resume.offset} ${resume.digest}` : '');

export const uploadHeader = (mode: UploadMode, size: number, remoteName: string, resume?: ResumePoint): string => {
  if (!Number.isSafeInteger(size) || size < 0) throw new RxferError('INTERNAL', `invalid upload size ${size}`);
  const verb = mode === 'create' ? 'ADDFILE' : 'UPLOAD';
  return `${verb} ${size}${from(resume)}\n${wireName(remoteName)}\n`;
};

export const downloadHeader = (remoteName: string, resume?: ResumePoint): string => `DOWNLOAD${from(resume)}\n${wireName(remoteName)}\n`;

export const resumeQuery = (remoteName: string): string => `RESUME\n${wireName(remoteName)}\n`;
