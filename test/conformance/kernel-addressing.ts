/** KernelOps conformance cases: addresses, routes, sysctls, and live traffic on real kernels. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { type CaseRunner, expectKernelError, findRoute, pick, ping } from './kernel-support.js';

export function addressingCases({ real, withFixture, withSandbox }: CaseRunner): void {
  describe('addresses', () => {
    it('IPv4: add, re-add, list, filter by link, delete idempotently', () =>
      withFixture(async (_fx, k) => {
        await k.linkAdd(null, { kind: 'bridge', name: 'cnmbr0', up: true });
        await k.linkAdd(null, { kind: 'bridge', name: 'cnmbr1' });
        await k.addrAdd(null, 'cnmbr0', '10.99.0.1/24');
        await k.addrAdd(null, 'cnmbr0', '10.99.0.1/24');
        await k.addrAdd(null, 'cnmbr1', '10.99.1.1/24');
        const v4 = (await k.addrList(null, 'cnmbr0')).filter((a) => a.family === 4);
        assert.deepEqual(v4, [{ ifname: 'cnmbr0', cidr: '10.99.0.1/24', family: 4 }]);
        const all = await k.addrList(null);
        assert.ok(all.some((a) => a.ifname === 'lo' && a.cidr === '127.0.0.1/8' && a.family === 4));
        assert.ok(all.some((a) => a.ifname === 'cnmbr1' && a.cidr === '10.99.1.1/24'));
        await k.addrDel(null, 'cnmbr0', '10.99.0.1/24');
        assert.deepEqual((await k.addrList(null, 'cnmbr0')).filter((a) => a.family === 4), []);
        await k.addrDel(null, 'cnmbr0', '10.99.0.1/24');
        await k.addrDel(null, 'cnmnothere', '10.99.0.1/24');
      }));

    it('IPv6: add, re-add, list, delete', () =>
      withFixture(async (_fx, k) => {
        await k.linkAdd(null, { kind: 'bridge', name: 'cnmbr0', up: true });
        await k.addrAdd(null, 'cnmbr0', 'fd00:99::1/64');
        await k.addrAdd(null, 'cnmbr0', 'fd00:99::1/64');
        const v6 = (await k.addrList(null, 'cnmbr0')).filter((a) => !a.cidr.startsWith('fe80:'));
        assert.deepEqual(v6, [{ ifname: 'cnmbr0', cidr: 'fd00:99::1/64', family: 6 }]);
        await k.addrDel(null, 'cnmbr0', 'fd00:99::1/64');
        assert.ok(!(await k.addrList(null, 'cnmbr0')).some((a) => a.cidr === 'fd00:99::1/64'));
        await k.addrDel(null, 'cnmbr0', 'fd00:99::1/64');
      }));

    it('addresses in a sandbox stay there', () =>
      withSandbox(async (_fx, k, sb) => {
        await k.linkAdd(null, { kind: 'veth', name: 'cnmv0', peer: { name: 'cnmeth0', netns: sb, up: true } });
        await k.addrAdd(sb, 'cnmeth0', '10.99.0.2/24');
        assert.ok((await k.addrList(sb)).some((a) => a.cidr === '10.99.0.2/24' && a.ifname === 'cnmeth0'));
        assert.ok(!(await k.addrList(null)).some((a) => a.cidr === '10.99.0.2/24'));
      }));
  });

  describe('neighbours', () => {
    // Real kernels only: the fake keeps no neighbour table (see kernelConformance).
    if (real) it('neighDel forgets a cached MAC, IPv4 and IPv6', () =>
      withFixture(async (fx, k) => {
        await k.linkAdd(null, { kind: 'bridge', name: 'cnmbr0', up: true });
        await k.addrAdd(null, 'cnmbr0', '10.96.0.1/24');
        const { execFileSync } = await import('node:child_process');
        const ipNeigh = (...args: string[]) =>
          execFileSync('nsenter', [`--net=${fx.hostNetnsPath!}`, 'ip', 'neigh', ...args], { encoding: 'utf8' }).trim();
        const entries = [['10.96.0.5', '02:00:00:00:00:05'], ['10.96.0.6', '02:00:00:00:00:06'], ['fd00:96::5', '02:00:00:00:00:07']] as const;
        for (const [ip, mac] of entries) ipNeigh('replace', ip, 'lladdr', mac, 'dev', 'cnmbr0', 'nud', 'reachable');
        for (const [ip, mac] of entries) assert.match(ipNeigh('show', ip, 'dev', 'cnmbr0'), new RegExp(`^${ip} lladdr ${mac} `));
        await k.neighDel(null, 'cnmbr0', '10.96.0.5');
        await k.neighDel(null, 'cnmbr0', 'fd00:96::5');
        assert.equal(ipNeigh('show', '10.96.0.5', 'dev', 'cnmbr0'), '');
        assert.equal(ipNeigh('show', 'fd00:96::5', 'dev', 'cnmbr0'), '');
        assert.match(ipNeigh('show', '10.96.0.6', 'dev', 'cnmbr0'), /lladdr 02:00:00:00:00:06/, 'other entries stay');
      }));

    it('neighDel is idempotent, also for a missing link', () =>
      withFixture(async (_fx, k) => {
        await k.linkAdd(null, { kind: 'bridge', name: 'cnmbr0', up: true });
        await k.addrAdd(null, 'cnmbr0', '10.96.0.1/24');
        await k.neighDel(null, 'cnmbr0', '10.96.0.5');
        await k.neighDel(null, 'cnmbr0', '10.96.0.5');
        await k.neighDel(null, 'cnmbr0', 'fd00:96::5');
        await k.neighDel(null, 'cnmnothere', '10.96.0.5');
      }));
  });

  describe('routes', () => {
    it('a connected route follows an address on an up link', () =>
      withFixture(async (_fx, k) => {
        await k.linkAdd(null, { kind: 'bridge', name: 'cnmbr0' });
        await k.addrAdd(null, 'cnmbr0', '10.99.0.1/24');
        assert.equal(findRoute(await k.routeList(null, 4), '10.99.0.0/24'), undefined, 'no route while down');
        await k.linkSet(null, 'cnmbr0', { up: true });
        const r = findRoute(await k.routeList(null, 4), '10.99.0.0/24');
        assert.deepEqual([r?.dev, r?.protocol, r?.scope, r?.family], ['cnmbr0', 'kernel', 'link', 4]);
        await k.addrAdd(null, 'cnmbr0', 'fd00:99::1/64');
        const r6 = findRoute(await k.routeList(null, 6), 'fd00:99::/64');
        assert.deepEqual([r6?.dev, r6?.protocol, r6?.family], ['cnmbr0', 'kernel', 6]);
        await k.linkSet(null, 'cnmbr0', { up: false });
        assert.equal(findRoute(await k.routeList(null, 4), '10.99.0.0/24'), undefined, 'gone while down');
        assert.equal(findRoute(await k.routeList(null, 6), 'fd00:99::/64'), undefined, 'gone while down');
        // keep_addr_on_down=0 (the default): IPv4 addresses survive a down link, IPv6 ones are flushed.
        assert.deepEqual((await k.addrList(null, 'cnmbr0')).map((a) => a.cidr), ['10.99.0.1/24']);
        await k.linkSet(null, 'cnmbr0', { up: true });
        assert.ok(findRoute(await k.routeList(null, 4), '10.99.0.0/24'), 'back when up again');
        await k.addrDel(null, 'cnmbr0', '10.99.0.1/24');
        assert.equal(findRoute(await k.routeList(null, 4), '10.99.0.0/24'), undefined, 'gone with the address');
      }));

    it('IPv4 default route via a gateway: replace, replace again, delete idempotently', () =>
      withFixture(async (_fx, k) => {
        await k.linkAdd(null, { kind: 'bridge', name: 'cnmbr0', up: true });
        await k.addrAdd(null, 'cnmbr0', '10.99.0.2/24');
        await k.routeReplace(null, { dst: 'default', via: '10.99.0.1', family: 4 });
        let defaults = (await k.routeList(null, 4)).filter((r) => r.dst === 'default');
        assert.deepEqual(defaults.map((r) => [r.via, r.dev, r.family]), [['10.99.0.1', 'cnmbr0', 4]]);
        await k.routeReplace(null, { dst: 'default', via: '10.99.0.254', dev: 'cnmbr0', family: 4 });
        defaults = (await k.routeList(null, 4)).filter((r) => r.dst === 'default');
        assert.deepEqual(defaults.map((r) => r.via), ['10.99.0.254']);
        await k.routeDel(null, { dst: 'default', via: '10.99.0.254', family: 4 });
        assert.equal(findRoute(await k.routeList(null, 4), 'default'), undefined);
        await k.routeDel(null, { dst: 'default', via: '10.99.0.254', family: 4 });
      }));

    it('IPv4 prefix routes with dev and metric; same dst with two metrics coexist', () =>
      withFixture(async (_fx, k) => {
        await k.linkAdd(null, { kind: 'bridge', name: 'cnmbr0', up: true });
        await k.addrAdd(null, 'cnmbr0', '10.99.0.2/24');
        await k.routeReplace(null, { dst: '10.50.0.0/16', dev: 'cnmbr0', metric: 100, family: 4 });
        await k.routeReplace(null, { dst: '10.50.0.0/16', via: '10.99.0.9', metric: 200, family: 4 });
        await k.routeReplace(null, { dst: '10.50.0.0/16', via: '10.99.0.1', metric: 200, family: 4 });
        const found = (await k.routeList(null, 4)).filter((r) => r.dst === '10.50.0.0/16');
        found.sort((a, b) => (a.metric ?? 0) - (b.metric ?? 0));
        assert.deepEqual(found.map((r) => [r.metric, r.via, r.dev]), [[100, undefined, 'cnmbr0'], [200, '10.99.0.1', 'cnmbr0']]);
        await k.routeDel(null, { dst: '10.50.0.0/16', metric: 100, family: 4 });
        const left = (await k.routeList(null, 4)).filter((r) => r.dst === '10.50.0.0/16');
        assert.deepEqual(left.map((r) => r.metric), [200]);
      }));

    it('IPv6 default route via a gateway and a prefix route', () =>
      withFixture(async (_fx, k) => {
        await k.linkAdd(null, { kind: 'veth', name: 'cnmv0', up: true, peer: { name: 'cnmv1', up: true } });
        await k.addrAdd(null, 'cnmv0', 'fd00:99::2/64');
        await k.routeReplace(null, { dst: 'default', via: 'fd00:99::1', dev: 'cnmv0', family: 6 });
        await k.routeReplace(null, { dst: 'fd00:50::/48', dev: 'cnmv0', family: 6 });
        const routes = await k.routeList(null, 6);
        assert.deepEqual(pick(findRoute(routes, 'default')), ['fd00:99::1', 'cnmv0', 6]);
        assert.deepEqual(pick(findRoute(routes, 'fd00:50::/48')), [undefined, 'cnmv0', 6]);
        assert.ok(routes.every((r) => r.family === 6));
        await k.routeDel(null, { dst: 'default', via: 'fd00:99::1', dev: 'cnmv0', family: 6 });
        assert.equal(findRoute(await k.routeList(null, 6), 'default'), undefined);
      }));

    it('routes through a down link: ENETDOWN; IPv6 gateway off-link: EHOSTUNREACH', () =>
      withFixture(async (_fx, k) => {
        await k.linkAdd(null, { kind: 'veth', name: 'cnmv0', peer: { name: 'cnmv1' } });
        await expectKernelError(k.routeReplace(null, { dst: '10.70.0.0/16', dev: 'cnmv0', family: 4 }), ['ENETDOWN']);
        await expectKernelError(k.routeReplace(null, { dst: 'fd00:70::/48', dev: 'cnmv0', family: 6 }), ['ENETDOWN']);
        await k.linkSet(null, 'cnmv0', { up: true });
        await k.addrAdd(null, 'cnmv0', 'fd00:99::2/64');
        await expectKernelError(k.routeReplace(null, { dst: 'fd00:70::/48', via: 'fd00:2::1', family: 6 }), ['EHOSTUNREACH']);
        assert.equal(findRoute(await k.routeList(null, 6), 'fd00:70::/48'), undefined);
      }));

    it('routes live in their namespace; a gateway off-link is refused', () =>
      withSandbox(async (_fx, k, sb) => {
        await k.linkAdd(null, { kind: 'veth', name: 'cnmv0', peer: { name: 'cnmeth0', netns: sb, up: true } });
        await k.addrAdd(sb, 'cnmeth0', '10.99.0.2/24');
        await k.routeReplace(sb, { dst: 'default', via: '10.99.0.1', family: 4 });
        assert.deepEqual(pick(findRoute(await k.routeList(sb, 4), 'default')), ['10.99.0.1', 'cnmeth0', 4]);
        assert.equal(findRoute(await k.routeList(null, 4), 'default'), undefined);
        await expectKernelError(k.routeReplace(sb, { dst: '10.60.0.0/16', via: '10.200.0.1', family: 4 }), ['ENETUNREACH']);
      }));
  });

  describe('sysctl', () => {
    it('global keys are per namespace', () =>
      withSandbox(async (_fx, k, sb) => {
        await k.sysctlSet(null, 'net.ipv4.ip_forward', '1');
        await k.sysctlSet(sb, 'net.ipv4.ip_forward', '0');
        assert.equal(await k.sysctlGet(null, 'net.ipv4.ip_forward'), '1');
        assert.equal(await k.sysctlGet(sb, 'net.ipv4.ip_forward'), '0');
        await k.sysctlSet(sb, 'net.ipv4.ip_forward', '1');
        await k.sysctlSet(null, 'net.ipv4.ip_forward', '0');
        assert.equal(await k.sysctlGet(sb, 'net.ipv4.ip_forward'), '1');
        assert.equal(await k.sysctlGet(null, 'net.ipv4.ip_forward'), '0');
      }));

    it('per-interface keys exist while the interface does', () =>
      withSandbox(async (_fx, k, sb) => {
        await k.linkAdd(null, { kind: 'veth', name: 'cnmv0', peer: { name: 'cnmeth0', netns: sb } });
        await k.sysctlSet(sb, 'net.ipv6.conf.cnmeth0.disable_ipv6', '1');
        assert.equal(await k.sysctlGet(sb, 'net.ipv6.conf.cnmeth0.disable_ipv6'), '1');
        await k.sysctlSet(null, 'net.ipv4.conf.cnmv0.route_localnet', '1');
        assert.equal(await k.sysctlGet(null, 'net.ipv4.conf.cnmv0.route_localnet'), '1');
        await expectKernelError(k.sysctlGet(null, 'net.ipv6.conf.cnmeth0.disable_ipv6'), ['ENOENT']);
        await k.linkDel(null, 'cnmv0');
        await expectKernelError(k.sysctlGet(null, 'net.ipv4.conf.cnmv0.route_localnet'), ['ENOENT']);
      }));

    it('interfaces made in a namespace whose default.disable_ipv6 is 1 start without IPv6, until turned on', () =>
      withSandbox(async (_fx, k, sb) => {
        const lo = 'net.ipv6.conf.lo.disable_ipv6';
        const loBefore = await k.sysctlGet(sb, lo);
        await k.sysctlSet(sb, 'net.ipv6.conf.default.disable_ipv6', '1');
        await k.linkAdd(null, { kind: 'veth', name: 'cnmv0', peer: { name: 'cnmeth0', netns: sb, up: true } });
        assert.equal(await k.sysctlGet(sb, 'net.ipv6.conf.cnmeth0.disable_ipv6'), '1');
        assert.equal(await k.sysctlGet(sb, lo), loBefore, 'interfaces made before keep theirs');
        await expectKernelError(k.addrAdd(sb, 'cnmeth0', 'fd00:98::2/64'), ['EACCES']);
        assert.deepEqual((await k.addrList(sb, 'cnmeth0')).filter((a) => a.cidr.includes(':')), []);
        await k.sysctlSet(sb, 'net.ipv6.conf.cnmeth0.disable_ipv6', '0');
        await k.addrAdd(sb, 'cnmeth0', 'fd00:98::2/64');
        assert.ok((await k.addrList(sb, 'cnmeth0')).some((a) => a.cidr === 'fd00:98::2/64'));
      }));

    it('sysctls follow the namespace at a path: deleted and re-created, only the new one is seen', () =>
      withSandbox(async (_fx, k, sb) => {
        // A new namespace inherits conf/all from the machine's own (devconf_inherit_init_net=0): 1 where
        // Docker runs, 0 elsewhere. So the checks flip whatever value a namespace starts with.
        const key = 'net.ipv4.conf.all.forwarding';
        const flip = (v: string) => (v === '1' ? '0' : '1');
        const fresh = await k.sysctlGet(sb, key);
        assert.match(fresh, /^[01]$/);
        await k.sysctlSet(sb, key, flip(fresh));
        assert.equal(await k.sysctlGet(sb, key), flip(fresh));
        await k.deleteNetns(sb);
        await k.createNetns(sb);
        assert.equal(await k.sysctlGet(sb, key), fresh, 'a fresh namespace, not the old one');
        const host = await k.sysctlGet(null, key);
        await k.sysctlSet(sb, key, flip(host));
        // Twice more across turns of the event loop: what a later request would meet.
        await new Promise((resolve) => setImmediate(resolve));
        assert.equal(await k.sysctlGet(sb, key), flip(host));
        assert.equal(await k.sysctlGet(null, key), host, 'the host namespace untouched');
      }));

    it('values read back as the kernel normalises them; ip_forward is conf.all.forwarding', () =>
      withFixture(async (_fx, k) => {
        await k.sysctlSet(null, 'net.ipv4.ip_forward', '01');
        assert.equal(await k.sysctlGet(null, 'net.ipv4.ip_forward'), '1');
        assert.equal(await k.sysctlGet(null, 'net.ipv4.conf.all.forwarding'), '1');
        await k.sysctlSet(null, 'net.ipv4.conf.all.forwarding', '0');
        assert.equal(await k.sysctlGet(null, 'net.ipv4.ip_forward'), '0');
        await expectKernelError(k.sysctlSet(null, 'net.ipv4.ip_forward', 'yes'), ['EINVAL']);
        await k.sysctlSet(null, 'net.ipv4.ping_group_range', '0 2147483647');
        assert.equal(await k.sysctlGet(null, 'net.ipv4.ping_group_range'), '0\t2147483647');
      }));

    it('an unknown key: ENOENT', () =>
      withFixture(async (_fx, k) => {
        await expectKernelError(k.sysctlGet(null, 'net.ipv4.cnm_no_such_key'), ['ENOENT']);
        await expectKernelError(k.sysctlSet(null, 'net.ipv4.cnm_no_such_key', '1'), ['ENOENT']);
      }));
  });

  // Real kernels only: the fake carries no traffic.
  if (real) describe('traffic', () => {
    it('two sandboxes on one bridge ping each other', () =>
      withFixture(async (fx, k) => {
        const [a, b] = [fx.newNetnsPath(), fx.newNetnsPath()];
        await k.createNetns(a);
        await k.createNetns(b);
        await k.linkAdd(null, { kind: 'bridge', name: 'cnmbr0', up: true });
        for (const [sb, i] of [[a, 2], [b, 3]] as const) {
          await k.linkAdd(null, { kind: 'veth', name: `cnmv${i}`, up: true, master: 'cnmbr0', peer: { name: 'cnmeth0', netns: sb, up: true } });
          await k.addrAdd(sb, 'cnmeth0', `10.99.0.${i}/24`);
        }
        assert.equal(await ping(a, '10.99.0.3'), true, 'a reaches b');
        assert.equal(await ping(b, '10.99.0.2'), true, 'b reaches a');
        // ping() throws when it could not run, so the negative check below is a real "blocked".
        await k.linkDel(null, 'cnmv3');
        assert.equal(await ping(a, '10.99.0.3', 1), false, 'unplugged b is unreachable');
      }));
  });
}
