/**
 * The README's multi-host walkthrough is scripts/multihost-demo.sh: this runs it as a user would and checks
 * what it prints (the overlay on every host, six cross-host pings by address and one by name, three peers, a
 * VIP service answered from backends on two other hosts) and that it leaves nothing
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
  it('three hosts, one overlay: listed everywhere, six cross-host pings, three peers; nothing left behind', { timeout: 420_000 }, async () => {
    const { code, out } = await run();
    assert.equal(code, 0, out);
    const [, namespaces, dir] = /namespaces (.*); state in (\S+)/.exec(out) ?? [];
    assert.ok(namespaces && dir, out);
    for (const host of [2, 3]) assert.match(out, new RegExp(`host ${host}:\\n.*NAME.*\\n\\w{12}\\s+ov\\s+overlay\\s+global`), out);
    for (const [a, b] of [[1, 2], [1, 3], [2, 1], [2, 3], [3, 1], [3, 2]]) assert.ok(out.includes(`s${a} -> s${b} ok`), `s${a} -> s${b}\n${out}`);
    assert.ok(out.includes('s1 -> s3 by name ok'), out);
    assert.match(out, /Peers of ov seen from host 1: 10\.199\.0\.1 10\.199\.0\.2 10\.199\.0\.3/);
    // The VIP service: both hosts' backends listed on host 1, and both answer its requests (none fails).
    assert.match(out, /web: VIP 10\.90\.0\.\d+, backends seen from host 1: w2@10\.90\.0\.\d+\/24 w3@10\.90\.0\.\d+\/24/);
    const answers = /20 requests from s1 \(host 1\) to http:\/\/web\/: (.*)/.exec(out)?.[1] ?? '';
    assert.match(answers, /w2 x\d+/, out);
    assert.match(answers, /w3 x\d+/, out);
    assert.doesNotMatch(answers, /FAIL/, out);
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
