/**
 * The API socket's permissions from the instant bind() creates it: listen() binds synchronously, so
 * the mode seen right after the original listen() call returns — before any callback, before any
 * chmod — is the mode a racing client would have met. And --group names → gids.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listenUnixSocket, resolveGroup } from '../../src/api/socket.js';
import { InvalidParameterError } from '../../src/errors.js';

describe('API socket', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cnmt-sock-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('is never more than 0660 between bind() and the chmod, whatever the daemon umask', async () => {
    const path = join(dir, 'a.sock');
    const server = createServer();
    const original = server.listen.bind(server);
    let atBind: { mode: number; umask: number } | undefined;
    // Runs inside listenUnixSocket's listen() call, right after the kernel created the file.
    server.listen = ((...args: Parameters<typeof server.listen>) => {
      const result = original(...args);
      atBind = { mode: lstatSync(path).mode & 0o777, umask: process.umask() };
      return result;
    }) as typeof server.listen;
    const before = process.umask(0o022); // a usual daemon umask: sockets would be born 0755
    try {
      await listenUnixSocket(server, path, 0);
      assert.ok(atBind, 'listen() was not called');
      assert.equal(atBind.mode & 0o007, 0, `bind() made the socket ${atBind.mode.toString(8)}: open to others until the chmod`);
      assert.equal(atBind.mode, 0o660);
      assert.equal(process.umask(), 0o022, 'the umask was not restored after binding');
      assert.equal(lstatSync(path).mode & 0o777, 0o660);
    } finally {
      process.umask(before);
      await new Promise((r) => server.close(r));
    }
  });

  it('owns the socket by root and the given group', async () => {
    const path = join(dir, 'b.sock');
    const server = createServer();
    await listenUnixSocket(server, path, 100);
    try {
      assert.equal(lstatSync(path).gid, 100);
      assert.equal(lstatSync(path).uid, 0);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('has its group before the server can serve anyone on it', async () => {
    // A client that got an answer (the daemon's readiness check) must find the socket's final owner:
    // 'listening' fires before any connection is served, so the group must be set by then.
    const path = join(dir, 'c.sock');
    const server = createServer();
    let gidAtListening: number | undefined;
    server.once('listening', () => (gidAtListening = lstatSync(path).gid));
    await listenUnixSocket(server, path, 100);
    try {
      assert.equal(lstatSync(path).gid, 100, 'the group in the end');
      assert.equal(gidAtListening, 100, 'the group when the server started listening');
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('resolves group names from the group file and numbers as they are', () => {
    const groups = join(dir, 'group');
    writeFileSync(groups, 'root:x:0:\ndocker:x:998:alice,bob\nbad:x:notanumber:\n');
    assert.equal(resolveGroup('docker', groups), 998);
    assert.equal(resolveGroup('root', groups), 0);
    assert.equal(resolveGroup('1234', groups), 1234);
    assert.throws(() => resolveGroup('dock', groups), InvalidParameterError);
    assert.throws(() => resolveGroup('bad', groups), /socket group "bad" not found/);
    assert.throws(() => resolveGroup('docker', join(dir, 'missing')), /not found/);
  });
});
