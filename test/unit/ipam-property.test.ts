/**
 * Randomised model check: thousands of allocations, static requests and releases against a plain Set
 * model. Invariants after every step: no address twice, never a reserved one (network, broadcast,
 * anycast, gateway, aux), dynamic ones inside the ip-range, exhaustion only when the model's range is
 * really full, and a restore into a fresh driver reproduces the state.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AddressInUseError, InvalidParameterError, IpamExhaustedError } from '../../src/errors.js';
import { DefaultIpam } from '../../src/ipam/default.js';
import type { PoolRequest } from '../../src/ipam/types.js';
import { cidrFirst, cidrLast, formatIp, parseCidr, parseIp, type IpCidr } from '../../src/util/ip.js';

/** Deterministic PRNG (mulberry32) so a failure reproduces from its seed. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Scenario {
  name: string;
  req: PoolRequest;
  /** Addresses that must never be handed out. */
  reserved: string[];
  steps: number;
}

const SCENARIOS: Scenario[] = [
  { name: 'IPv4 /24', req: { family: 4, subnet: '10.7.0.0/24' }, reserved: ['10.7.0.0', '10.7.0.1', '10.7.0.255'], steps: 6000 },
  {
    name: 'IPv4 /26 with range and aux',
    req: { family: 4, subnet: '10.8.0.0/26', ipRange: '10.8.0.32/28', gateway: '10.8.0.33', auxAddresses: { a: '10.8.0.40', b: '10.8.0.2' } },
    reserved: ['10.8.0.0', '10.8.0.63', '10.8.0.33', '10.8.0.40', '10.8.0.2'],
    steps: 6000,
  },
  { name: 'IPv4 /29', req: { family: 4, subnet: '10.9.0.0/29' }, reserved: ['10.9.0.0', '10.9.0.1', '10.9.0.7'], steps: 3000 },
  { name: 'IPv4 /31', req: { family: 4, subnet: '10.9.1.0/31' }, reserved: ['10.9.1.0'], steps: 500 },
  {
    name: 'IPv6 /64 with a /120 range (hash set)',
    req: { family: 6, subnet: 'fd00:3::/64', ipRange: 'fd00:3::1:0/120' },
    reserved: ['fd00:3::', 'fd00:3::1:0'],
    steps: 6000,
  },
  { name: 'IPv6 /120 (bitmap)', req: { family: 6, subnet: 'fd00:4::/120' }, reserved: ['fd00:4::', 'fd00:4::1'], steps: 6000 },
];

function hostsOf(cidr: IpCidr): string[] {
  const out: string[] = [];
  for (let v = cidrFirst(cidr); v <= cidrLast(cidr); v++) out.push(formatIp({ family: cidr.family, value: v }));
  return out;
}

describe('IPAM randomised model check', () => {
  for (const scenario of SCENARIOS) {
    for (const seed of [1, 2, 3]) {
      it(`${scenario.name}, seed ${seed}`, () => runScenario(scenario, seed));
    }
  }
});

function runScenario({ req, reserved, steps }: Scenario, seed: number): void {
  const random = prng(seed);
  let ipam = new DefaultIpam({ v4Pools: [], v6Pools: [] });
  const pool = ipam.requestPool(req);
  assert.ok(reserved.includes(pool.gateway), 'the scenario lists the gateway');
  const subnet = parseCidr(pool.subnet)!;
  const range = parseCidr(pool.ipRange ?? pool.subnet)!;
  // Static requests: every host of a small subnet; for a huge one, the range, the reserved addresses
  // and the far end of the subnet.
  const subnetHosts =
    cidrLast(subnet) - cidrFirst(subnet) < 4096n
      ? hostsOf(subnet)
      : [...hostsOf(range), ...reserved, formatIp({ family: subnet.family, value: cidrLast(subnet) })];
  const inRange = (a: string) => {
    const v = parseIp(a)!.value;
    return v >= cidrFirst(range) && v <= cidrLast(range);
  };
  const usableInRange = hostsOf(range).filter((a) => !reserved.includes(a));
  const held = new Set<string>();
  let dynamicCount = 0;

  for (let step = 0; step < steps; step++) {
    const dice = random();
    if (dice < 0.5) {
      const full = usableInRange.every((a) => held.has(a));
      let address: string;
      try {
        address = ipam.requestAddress(pool.id);
      } catch (err) {
        assert.ok(err instanceof IpamExhaustedError, String(err));
        assert.ok(full, `step ${step}: exhausted while the range still has free addresses`);
        continue;
      }
      assert.ok(!full, `step ${step}: got ${address} from a full range`);
      assert.ok(!held.has(address), `step ${step}: ${address} handed out twice`);
      assert.ok(!reserved.includes(address), `step ${step}: reserved ${address} handed out`);
      assert.ok(inRange(address), `step ${step}: ${address} outside the ip-range`);
      held.add(address);
      dynamicCount++;
    } else if (dice < 0.65) {
      const wanted = subnetHosts[Math.floor(random() * subnetHosts.length)]!;
      try {
        assert.equal(ipam.requestAddress(pool.id, wanted), wanted);
        assert.ok(!held.has(wanted) && !reserved.includes(wanted), `step ${step}: ${wanted} granted twice`);
        held.add(wanted);
      } catch (err) {
        if (err instanceof AddressInUseError) assert.ok(held.has(wanted) || reserved.includes(wanted), `step ${step}: ${wanted}`);
        else if (err instanceof InvalidParameterError) assert.ok(reserved.includes(wanted), `step ${step}: ${wanted}`);
        else throw err;
      }
    } else if (dice < 0.98) {
      if (held.size === 0) continue;
      const victims = [...held];
      const victim = victims[Math.floor(random() * victims.length)]!;
      ipam.releaseAddress(pool.id, victim);
      held.delete(victim);
    } else {
      // Restart: a fresh driver restored from what was persisted must behave identically.
      const restored = new DefaultIpam({ v4Pools: [], v6Pools: [] });
      restored.restorePool(ipam.pools()[0]!, ipam.addresses(pool.id));
      ipam = restored;
    }
    if (step % 250 === 0) assert.deepEqual(new Set(ipam.addresses(pool.id)), held, `step ${step}: state matches the model`);
  }
  assert.deepEqual(new Set(ipam.addresses(pool.id)), held);
  assert.ok(dynamicCount > steps / 10, 'the scenario exercised dynamic allocation');
}
