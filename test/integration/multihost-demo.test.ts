/**
 * The README's multi-host walkthrough is scripts/multihost-demo.sh: this runs it as a user would and checks
 * what it prints (the overlay on every host, six cross-host pings by address and one by name, three peers) and that it leaves nothing
 * behind (namespaces, temp dir, mounts, processes).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import { onPath, realClientSkip, realKernelSkip } from '../helpers/privileges.js';

const skip = realKernelSkip() || (onPath('etcd') ? false : realClientSkip('etcd'));

function run(): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    // From the sources under test, never a dist/ an earlier build left behind.
    const p = spawn('bash', ['scripts/multihost-demo.sh'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CNM_FROM_SOURCE: '1' } });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    p.on('error', (err) => (out += `spawn failed: ${err.message}`));
    p.on('close', (code) => resolve({ code, out }));
  });
}

describe('the multi-host walkthrough script', { skip }, () => {
  it('three hosts, one overlay: listed everywhere, six cross-host pings, three peers; nothing left behind', { timeout: 240_000 }, async () => {
    const { code, out } = await run();
    assert.equal(code, 0, out);
    const [, namespaces, dir] = /namespaces (.*); state in (\S+)/.exec(out) ?? [];
    assert.ok(namespaces && dir, out);
    for (const host of [2, 3]) assert.match(out, new RegExp(`host ${host}:\\n.*NAME.*\\n\\w{12}\\s+ov\\s+overlay\\s+global`), out);
    for (const [a, b] of [[1, 2], [1, 3], [2, 1], [2, 3], [3, 1], [3, 2]]) assert.ok(out.includes(`s${a} -> s${b} ok`), `s${a} -> s${b}\n${out}`);
    assert.ok(out.includes('s1 -> s3 by name ok'), out);
    assert.match(out, /Peers of ov seen from host 1: 10\.199\.0\.1 10\.199\.0\.2 10\.199\.0\.3/);
    // Cleanup: the script's namespaces, temp dir, mounts and processes (etcd, cnm) are gone.
    const left = readdirSync('/run/netns');
    assert.deepEqual(namespaces.split(' ').filter((n) => left.includes(n)), [], 'namespaces removed');
    assert.ok(!readFileSync('/proc/mounts', 'utf8').includes(dir), 'no pin left mounted');
    assert.ok(!existsSync(dir), 'temp dir removed');
    const running = readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(dir);
      } catch {
        return false;
      }
    });
    assert.deepEqual(running, [], 'no etcd member or daemon left running');
  });
});
