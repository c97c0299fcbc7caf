import { RxferError } from '../errors/rxfer-error';
import type { ResumePoint } from '../protocol/command';
import { parseRemoteName } from '../protocol/remote-name';
import type { UploadMode } from './client-options';

/**
 * The name goes on the wire as one line, so a newline in it would desynchronise the session; the
 * server's own rules are checked here too, so a name it would refuse costs no round trip (and no
 * closed connection for owed upload data).
 */
const wireName = (remoteName: string): string => parseRemoteName(remoteName);

const from = (resume: ResumePoint | undefined): string => (resume ? ` FROM ${resume.offset} ${resume.digest}` : '');

export const uploadHeader = (mode: UploadMode, size: number, remoteName: string, resume?: ResumePoint): string => {
  if (!Number.isSafeInteger(size) || size < 0) throw new RxferError('INTERNAL', `invalid upload size ${size}`);
  const verb = mode === 'create' ? 'ADDFILE' : 'UPLOAD';
  return `${verb} ${size}${from(resume)}\n${wireName(remoteName)}\n`;
};

export const downloadHeader = (remoteName: string, resume?: ResumePoint): string => `DOWNLOAD${from(resume)}\n${wireName(remoteName)}\n`;

export const resumeQuery = (remoteName: string): string => `RESUME\n${wireName(remoteName)}\n`;


