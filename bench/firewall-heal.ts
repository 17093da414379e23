/**
 * How fast cnm's rules come back after `nft flush ruleset` (README: nftables bullet).
 *
 *   node --import tsx bench/firewall-heal.ts [--networks 10,100] [--reps 20]
 *
 * A real daemon in a throwaway cnmt-* namespace (backstop check set to an hour, so only nftables
 * events can heal), N networks with one sandbox each and one service. Each rep runs `nft flush ruleset`
 * inside that namespace and polls `nft -j list set inet cnm bridges` until every bridge is back.
 * Reported: from the flush process's exit to the first complete listing (an upper bound: each poll
 * spawns nft, a few ms), and the daemon's own figure (event seen → restore committed).
 */
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { startTestDaemon } from '../test/helpers/daemon.js';

const { values } = parseArgs({ options: { networks: { type: 'string', default: '10,100' }, reps: { type: 'string', default: '20' } } });
const sizes = values.networks!.split(',').map(Number);
const reps = Number(values.reps);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

for (const size of sizes) {
  const d = await startTestDaemon(['--firewall-check-interval', '3600', '--log-level', 'info']);
  try {
    for (let i = 0; i < size; i++) {
      const r = await d.api('POST', '/networks/create', { Name: `n${i}` });
      if (r.status !== 201) throw new Error(r.body);
    }
    await d.api('POST', '/cnm/v1/services', { Name: 'web', Network: 'n0' });
    const nft = (...args: string[]) => spawnSync('nsenter', [`--net=${d.hostNsPath}`, 'nft', ...args], { encoding: 'utf8' });
    const bridges = () => {
      const r = nft('-j', 'list', 'set', 'inet', 'cnm', 'bridges');
      if (r.status !== 0) return 0;
      return (JSON.parse(r.stdout).nftables.find((i: any) => i.set)?.set.elem ?? []).length as number;
    };
    const want = bridges();
    const outside: number[] = [];
    for (let rep = 0; rep < reps; rep++) {
      if (nft('flush', 'ruleset').status !== 0) throw new Error('flush failed');
      const flushed = performance.now();
      while (bridges() < want) {
        if (performance.now() - flushed > 10_000) throw new Error('rules not restored within 10 s');
      }
      outside.push(performance.now() - flushed);
      await new Promise((r) => setTimeout(r, 200));
    }
    const inside = [...d.logs().matchAll(/firewall restored after a change by another process.*?"ms":(\d+)/g)].map((m) => Number(m[1]));
    const o = outside.sort((a, b) => a - b);
    const i = inside.sort((a, b) => a - b);
    console.log(
      `${size} networks (+ default bridge, 1 service), ${reps} flushes: flush → rules back p50 ${percentile(o, 50).toFixed(0)} ms, ` +
        `p99 ${percentile(o, 99).toFixed(0)} ms, max ${o.at(-1)!.toFixed(0)} ms; daemon event → restored p50 ${i.length ? percentile(i, 50) : '?'} ms, max ${i.at(-1) ?? '?'} ms (${i.length} logged)`,
    );
  } finally {
    await d.cleanup();
  }
}
