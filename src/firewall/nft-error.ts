/** Turns nft's error text (the same from the binary and from libnftables) into a KernelError. */
import { KernelError } from '../errors.js';

/** strerror() texts nft prints after "Could not process rule:" (and in cache errors). */
const ERRNO_BY_TEXT: readonly (readonly [string, string])[] = [
  ['No such file or directory', 'ENOENT'],
  ['File exists', 'EEXIST'],
  ['Operation not permitted', 'EPERM'],
  ['Operation not supported', 'EOPNOTSUPP'],
  ['Device or resource busy', 'EBUSY'],
  ['No buffer space available', 'ENOBUFS'],
  ['Invalid argument', 'EINVAL'],
  ['Too many links', 'EMLINK'],
];

export function nftError(errorText: string, what = 'nft'): KernelError {
  const text = errorText.trim() || 'failed without an error message';
  const errno = ERRNO_BY_TEXT.find(([t]) => text.includes(t))?.[1];
  return new KernelError(`${what}: ${text}`, errno);
}

export function isMissingObject(err: unknown): boolean {
  return err instanceof KernelError && err.errno === 'ENOENT';
}
