/**
 * What the overlay's kernel steps cost (README: kernel access bullet): in-process netlink against
 * iproute2 spawns (`ip`, `bridge`, `ethtool`), the same KernelOps calls through both implementations.
 *
 *   node --import tsx bench/overlay-kernel.ts [--reps 200] [--spawn-reps 50] [--peers 100,1000]
 *
 * The script re-runs itself inside a throwaway cnmt-* namespace (nsenter), so both kernels work on
 * `null` = that namespace and iproute2 pays no nsenter per call. Rows:
 *   - network: a bridge + a VXLAN device enslaved to it, both up (what the driver makes per network);
 *   - network, tx csum off: the same plus the transmit checksum offload turned off (ioctl / ethtool);
 *   - peer add: one remote endpoint, an FDB entry + a neighbour entry; peer del: both removed;
 *   - reconcile listing at N peers: fdbList + neighList of a device holding N peers (the periodic check).
 * Teardown between reps is not timed.
 */
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { NetlinkKernel } from '../src/kernel/netlink/kernel.js';
import { IprouteKernel } from '../src/kernel/iproute.js';
import type { KernelOps, VxlanSpec } from '../src/kernel/types.js';
import { readPeerTables } from '../src/drivers/overlay/peer-apply.js';
import { createTestNetns, deleteTestNetns, netnsPath } from '../test/helpers/netns.js';
import { summarize, timeMs } from './lib/stats.js';

const { values } = parseArgs({
  options: { reps: { type: 'string', default: '200' }, 'spawn-reps': { type: 'string', default: '50' }, peers: { type: 'string', default: '100,1000' } },
});

function mac(i: number): string {
  return `02:42:0a:${((i >> 16) & 0xff).toString(16).padStart(2, '0')}:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;
}

function ip(i: number): string {
  return `10.${100 + (i >> 16)}.${(i >> 8) & 0xff}.${i & 0xff}`;
}

const vxlan = (extra: Partial<VxlanSpec> = {}): VxlanSpec => ({
  kind: 'vxlan', name: 'cnmvx0', vni: 5001, local: '10.199.0.1', learning: false, arpProxy: true, mtu: 1450, master: 'cnmbr0', up: true, ...extra,
});

async function main(): Promise<void> {
  const netlink = new NetlinkKernel();
  const iproute = new IprouteKernel();
  const setup = netlink; // untimed setup and teardown always go through netlink
  const rows: Array<[string, string, number[]]> = [];
  const reps = { netlink: Number(values.reps), iproute: Number(values['spawn-reps']) };
  try {
    for (const [name, k] of [['netlink', netlink], ['iproute2', iproute]] as Array<[keyof typeof reps | 'iproute2', KernelOps]>) {
      const n = name === 'netlink' ? reps.netlink : reps.iproute;
      for (const [label, extra] of [['network (bridge + vxlan)', {}], ['network, tx csum off', { txChecksumOffload: false }]] as const) {
        const samples: number[] = [];
        for (let i = 0; i < n; i++) {
          samples.push(await timeMs(async () => {
            await k.linkAdd(null, { kind: 'bridge', name: 'cnmbr0', mtu: 1450, up: true, multicastSnooping: false });
            await k.linkAdd(null, vxlan(extra));
          }));
          await setup.linkDel(null, 'cnmvx0');
          await setup.linkDel(null, 'cnmbr0');
        }
        rows.push([label, name, samples]);
      }
      await setup.linkAdd(null, { kind: 'bridge', name: 'cnmbr0', mtu: 1450, up: true });
      await setup.linkAdd(null, vxlan());
      const add: number[] = [];
      const del: number[] = [];
      for (let i = 0; i < n; i++) {
        const fdb = { ifname: 'cnmvx0', mac: mac(i + 1), dst: '10.199.0.2' };
        add.push(await timeMs(async () => {
          await k.fdbAdd(null, fdb);
          await k.neighReplace(null, { ifname: 'cnmvx0', ip: ip(i + 1), mac: fdb.mac });
        }));
        del.push(await timeMs(async () => {
          await k.neighDel(null, 'cnmvx0', ip(i + 1));
          await k.fdbDel(null, fdb);
        }));
      }
      rows.push(['peer add (fdb + neigh)', name, add], ['peer del (neigh + fdb)', name, del]);
      for (const count of values.peers!.split(',').map(Number)) {
        for (let i = 0; i < count; i++) {
          await setup.fdbAdd(null, { ifname: 'cnmvx0', mac: mac(i + 1), dst: `10.199.0.${2 + (i % 200)}` });
          await setup.neighReplace(null, { ifname: 'cnmvx0', ip: ip(i + 1), mac: mac(i + 1) });
        }
        const listing: number[] = [];
        for (let i = 0; i < Math.min(n, 20); i++) {
          let seen = 0;
          listing.push(await timeMs(async () => {
            const t = await readPeerTables(k, null, 'cnmvx0');
            seen = t.fdb.length;
          }));
          if (seen !== count) throw new Error(`listed ${seen} FDB entries, expected ${count}`);
        }
        rows.push([`reconcile listing, ${count} peers`, name, listing]);
      }
      await setup.linkDel(null, 'cnmvx0');
      await setup.linkDel(null, 'cnmbr0');
    }
  } finally {
    netlink.close();
    iproute.close();
  }
  console.log('| step | kernel | n | p50 ms | p99 ms |');
  console.log('|---|---|---|---|---|');
  for (const [label, name, samples] of rows) {
    const s = summarize(samples);
    console.log(`| ${label} | ${name} | ${s.n} | ${s.p50.toFixed(3)} | ${s.p99.toFixed(3)} |`);
  }
}

if (process.env.CNM_BENCH_OVERLAY_INSIDE !== '1') {
  const ns = createTestNetns();
  try {
    const r = spawnSync('nsenter', [`--net=${netnsPath(ns)}`, process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
      stdio: 'inherit', env: { ...process.env, CNM_BENCH_OVERLAY_INSIDE: '1' },
    });
    process.exitCode = r.status ?? 1;
  } finally {
    deleteTestNetns(ns);
  }
} else {
  await main();
}
