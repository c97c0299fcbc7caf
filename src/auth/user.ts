import { RxferError } from '../errors/rxfer-error';

/** What a user may do. Each role includes the ones before it. */
export const ROLES = ['read', 'write', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export type Permission = 'read' | 'write';

/** An authenticated (or anonymous) principal of one session. */
export interface User {
  readonly name: string;
  readonly role: Role;
  /** Folder inside the storage that is this user's whole world; '' is the storage itself. */
  readonly root: string;
  /** Bytes this user may store, staging data included; undefined means no quota. */
  readonly quotaBytes?: number;
}

export const ANONYMOUS = 'anonymous';

export const allows = (user: User, permission: Permission): boolean =>
  permission === 'read' ? true : user.role === 'write' || user.role === 'admin';

/** The storage name of a file the user calls `name`: every path a user gives is inside their root. */
export const scopedName = (user: User, name: string): string => (user.root === '' ? name : `${user.root}/${name}`);

/** Storage speaks in storage names ("alice/x"); a client should hear its own ("x"). */
export const inUserTerms = (error: RxferError, user: User | undefined): RxferError => {
  const root = user?.root ?? '';
  if (root === '' || !error.message.includes(`${root}/`)) return error;
  return new RxferError(error.code, error.message.split(`${root}/`).join(''), error.detail);
};
