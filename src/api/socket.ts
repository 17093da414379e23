/**
 * The API's unix socket: 0660, owned by root and the socket group (dockerd's -G). The mode is right from
 * the moment bind() creates the file — the umask is narrowed around listen(), which binds synchronously
 * — so there is no window in which the socket is open to everyone before a chmod.
 */
import { chmodSync, chownSync, readFileSync } from 'node:fs';
import { lstat, mkdir, unlink } from 'node:fs/promises';
import type { Server } from 'node:net';
import { createConnection } from 'node:net';
import { dirname } from 'node:path';
import { InvalidParameterError, SystemError, errorMessage } from '../errors.js';

export const SOCKET_MODE = 0o660;
/** What bind() leaves: rw for owner and group, nothing for others. */
const BIND_UMASK = 0o117;

/**
 * Bind and listen on `socketPath` with mode 0660 and group `gid`. A socket file nobody listens on (left
 * by a crash) is replaced; a live one is refused.
 */
export async function listenUnixSocket(server: Server, socketPath: string, gid: number): Promise<void> {
  await prepareSocketPath(socketPath);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      let ownerError: unknown;
      const previous = process.umask(BIND_UMASK);
      try {
        server.listen(socketPath, () => {
          server.off('error', reject);
          if (ownerError === undefined) resolve();
          else reject(ownerError);
        });
        // bind() ran inside listen(): owner and mode are set before the event loop turns, so no client is
        // served (no readiness check answered) while the socket still has root's group. A bind that
        // failed reports through 'error'; its missing file is not the error to report.
        try {
          chownSync(socketPath, 0, gid);
          chmodSync(socketPath, SOCKET_MODE);
        } catch (err) {
          ownerError = err;
        }
      } finally {
        process.umask(previous);
      }
    });
  } catch (err) {
    server.close();
    throw new SystemError(`cannot listen on ${socketPath}: ${errorMessage(err)}`, { cause: err });
  }
}

/**
 * A group name or number → gid, from /etc/group (no NSS: the daemon spawns nothing for this).
 * Throws a 400-class error naming the group when it does not exist.
 */
export function resolveGroup(group: string, groupFile = '/etc/group'): number {
  if (/^\d+$/.test(group)) return Number(group);
  let text = '';
  try {
    text = readFileSync(groupFile, 'utf8');
  } catch {
    /* no group file: only numeric groups work */
  }
  for (const line of text.split('\n')) {
    const [name, , gid] = line.split(':');
    if (name === group && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  throw new InvalidParameterError(`socket group ${JSON.stringify(group)} not found in ${groupFile}`);
}

/** Create the socket's directory; remove a socket file nobody listens on (left by a crash). */
async function prepareSocketPath(socketPath: string): Promise<void> {
  await mkdir(dirname(socketPath), { recursive: true, mode: 0o711 });
  const stat = await lstat(socketPath).catch(() => undefined);
  if (!stat) return;
  if (!stat.isSocket()) throw new SystemError(`${socketPath} exists and is not a socket`);
  if (await isListening(socketPath)) throw new SystemError(`${socketPath} is in use by a running daemon`);
  await unlink(socketPath);
}

function isListening(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection(socketPath);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
