import { RxferError } from '../errors/rxfer-error';

/** A port that cannot be had is a configuration error (exit 2), said in words with the key to change. */
export const listenError = (err: NodeJS.ErrnoException, host: string, port: number, key: string): Error => {
  if (err.code === 'EADDRINUSE') return new RxferError('CONFIG_INVALID', `${key}: ${host} port ${port} is already in use by another process; choose another port or stop that process`);
  if (err.code === 'EACCES') return new RxferError('CONFIG_INVALID', `${key}: not allowed to listen on ${host} port ${port} (ports below 1024 need privileges)`);
  if (err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND') return new RxferError('CONFIG_INVALID', `${key}: ${host} is not an address of this machine (${err.code})`);
  return err;
};
