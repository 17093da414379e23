/**
 * The one namespace primitive (src/kernel/netns.ts) over a scripted libc: the order of setns calls and
 * the single failure policy — entering fails → throws, thread never left; fn throws → home, then the
 * error; nested visit → refused before moving; returning fails → onHomeLost, the one fatal case.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KernelError } from '../../src/errors.js';
import { CLONE_NEWNET, type NetnsLibc, ThreadNamespace } from '../../src/kernel/netns.js';

interface Script {
  calls: string[];
  failSetns?: (fd: number) => boolean;
  nstype?: number;
}

function scriptedLibc(script: Script): NetnsLibc {
  return {
    setns: (fd, nstype) => {
      script.calls.push(`setns ${fd} ${nstype === CLONE_NEWNET ? 'net' : nstype}`);
      return script.failSetns?.(fd) ? -1 : 0;
    },
    unshare: () => (script.calls.push('unshare'), 0),
    ioctl: () => script.nstype ?? CLONE_NEWNET,
    mount: (source, target) => (script.calls.push(`mount ${source} ${target}`), 0),
    umount2: (target) => (script.calls.push(`umount ${target}`), 0),
    netnsCookie: () => (script.calls.push('cookie'), 7n),
  };
}

class HomeLost extends Error {}

function thread(script: Script): ThreadNamespace {
  return new ThreadNamespace(scriptedLibc(script), {
    onHomeLost: (error) => {
      script.calls.push(`home lost: ${error.message}`);
      throw new HomeLost(error.message);
    },
  });
}

describe('withNetns', () => {
  it('enters, runs and returns home, in that order', () => {
    const s: Script = { calls: [] };
    const t = thread(s);
    try {
      assert.equal(t.withNetns(42, 'visit', () => (s.calls.push('fn'), 7)), 7);
      assert.deepEqual(s.calls, ['setns 42 net', 'fn', `setns ${t.homeFd} net`]);
    } finally {
      t.close();
    }
  });

  it('a failed entry throws a KernelError, never runs fn, never "returns", and the next visit works', () => {
    const s: Script = { calls: [], failSetns: (fd) => fd === 42 };
    const t = thread(s);
    try {
      assert.throws(() => t.withNetns(42, 'visit', () => s.calls.push('fn')), (e: unknown) => e instanceof KernelError && /visit: setns/.test(e.message));
      assert.deepEqual(s.calls, ['setns 42 net']);
      assert.equal(t.withNetns(43, 'again', () => 1), 1);
    } finally {
      t.close();
    }
  });

  it('fn throwing: the thread returns home first, then the error propagates', () => {
    const s: Script = { calls: [] };
    const t = thread(s);
    try {
      assert.throws(() => t.withNetns(42, 'visit', () => {
        throw new Error('boom');
      }), /boom/);
      assert.deepEqual(s.calls, ['setns 42 net', `setns ${t.homeFd} net`]);
    } finally {
      t.close();
    }
  });

  it('a nested visit is refused before the thread moves', () => {
    const s: Script = { calls: [] };
    const t = thread(s);
    try {
      assert.throws(() => t.withNetns(42, 'outer', () => t.withNetns(43, 'inner', () => 1)), (e: unknown) => e instanceof KernelError && e.errno === 'EBUSY');
      assert.deepEqual(s.calls, ['setns 42 net', `setns ${t.homeFd} net`], 'inner never called setns');
      assert.throws(() => t.withNetns(42, 'outer', () => t.withNewNetns('inner', () => 1)), /nested namespace visit/);
    } finally {
      t.close();
    }
  });

  it('failing to return home goes to the one fatal handler, even when fn succeeded', () => {
    const s: Script = { calls: [] };
    const t = thread(s);
    s.failSetns = (fd) => fd === t.homeFd;
    try {
      assert.throws(() => t.withNetns(42, 'visit', () => 1), HomeLost);
      assert.match(s.calls.at(-1)!, /^home lost: visit: cannot return the thread to the daemon's network namespace/);
    } finally {
      t.close();
    }
  });
});

describe('pinNetworkNamespace', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cnm-netns-unit-'));
  const file = join(dir, 'source');
  writeFileSync(file, '');
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

  it('pins a network namespace by its open fd, not by its path', () => {
    const s: Script = { calls: [] };
    const t = thread(s);
    try {
      // dev:ino of the file, then the namespace cookie read inside it (the scripted libc says 7).
      assert.match(t.pinNetworkNamespace(file, '/pin'), /^\d+:\d+:7$/);
      assert.equal(s.calls.length, 4);
      assert.match(s.calls[0]!, /^mount \/proc\/self\/fd\/\d+ \/pin$/);
      assert.deepEqual(s.calls.slice(1).map((c) => c.replace(/\d+/, 'N')), ['setns N net', 'cookie', 'setns N net']);
    } finally {
      t.close();
    }
  });

  it('refuses another kind of namespace and the daemon\'s own, mounting nothing', () => {
    const other: Script = { calls: [], nstype: 0x00020000 /* CLONE_NEWNS */ };
    const t1 = thread(other);
    const own: Script = { calls: [] };
    const t2 = thread(own);
    try {
      assert.throws(() => t1.pinNetworkNamespace(file, '/pin'), (e: unknown) => e instanceof KernelError && e.errno === 'EINVAL' && /not a network namespace/.test(e.message));
      assert.throws(() => t2.pinNetworkNamespace('/proc/thread-self/ns/net', '/pin'), /daemon's own network namespace/);
      assert.throws(() => t2.pinNetworkNamespace(file, '/pin', [t2.pinNetworkNamespace(file, '/pin0')]), /daemon's own/);
      assert.deepEqual(other.calls, []);
      assert.equal(own.calls.filter((c) => c.startsWith('mount')).length, 1, 'only the pin0 mount');
    } finally {
      t1.close();
      t2.close();
    }
  });
});
