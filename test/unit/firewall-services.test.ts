/** Service load-balancing scripts: golden files, slot assignment, validation. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidParameterError } from '../../src/errors.js';
import { compileFull } from '../../src/firewall/compile.js';
import { assignSlots, compileRemoveService, compileSetService, SERVICE_SLOTS } from '../../src/firewall/services.js';
import type { FirewallService } from '../../src/firewall/types.js';
import { assertGolden } from '../helpers/golden.js';

function golden(name: string, actual: string): void {
  assertGolden('firewall', name, actual);
}

const SVC: FirewallService = {
  id: 'e'.repeat(64), vip: '10.0.0.100', ports: [{ protocol: 'tcp', port: 80 }, { protocol: 'udp', port: 53 }],
  backends: ['10.0.0.2', '10.0.0.3'],
};

describe('firewall services', () => {
  it('set and remove scripts (golden)', () => {
    golden('service-set.nft', compileSetService(SVC));
    golden('service-remove.nft', compileRemoveService(SVC));
  });

  it('an IPv6 VIP: its own svc6_ objects translating ip6 daddr, the VIP in vips6 / vip_ports6, canonical addresses', () => {
    const v6: FirewallService = { id: 'e'.repeat(64), vip: 'FD00::64', ports: [{ protocol: 'tcp', port: 80 }], backends: ['fd00::2', 'fd00:0::3'] };
    golden('service-set-ipv6.nft', compileSetService(v6));
    golden('service-remove-ipv6.nft', compileRemoveService(v6));
    const any = compileSetService({ ...v6, ports: [] });
    assert.match(any, /add element inet cnm vip_any6 \{ fd00::64 : goto svc6_eeeeeeeeeeeeeeee \}/);
    // The IPv4 and IPv6 halves of one service live side by side in one ruleset.
    assert.match(compileFull([], [SVC, v6]), /svc6_eeeeeeeeeeeeeeee/);
    assert.throws(() => compileSetService({ ...v6, backends: ['10.0.0.2'] }), InvalidParameterError);
  });

  it('a service without ports maps the bare VIP; without backends the slot map stays empty', () => {
    const script = compileSetService({ ...SVC, ports: [], backends: [] });
    assert.match(script, /add element inet cnm vip_any \{ 10\.0\.0\.100 : goto svc_eeeeeeeeeeeeeeee \}/);
    assert.doesNotMatch(script, /vip_ports/);
    assert.doesNotMatch(script, /add element inet cnm svc_/);
  });

  it('every slot is owned; three backends share them roughly evenly', () => {
    const slots = assignSlots(['10.0.0.2', '10.0.0.3', '10.0.0.4']);
    assert.equal(slots.length, SERVICE_SLOTS);
    for (const b of ['10.0.0.2', '10.0.0.3', '10.0.0.4']) {
      const n = slots.filter((s) => s === b).length;
      assert.ok(n > SERVICE_SLOTS / 6 && n < SERVICE_SLOTS / 2, `${b} owns ${n}`);
    }
  });

  it('removing a backend moves only its own slots; order of backends does not matter', () => {
    const before = assignSlots(['10.0.0.2', '10.0.0.3', '10.0.0.4']);
    assert.deepEqual(assignSlots(['10.0.0.4', '10.0.0.2', '10.0.0.3']), before);
    const after = assignSlots(['10.0.0.2', '10.0.0.4']);
    for (let s = 0; s < SERVICE_SLOTS; s++) {
      if (before[s] !== '10.0.0.3') assert.equal(after[s], before[s], `slot ${s} moved`);
      else assert.notEqual(after[s], '10.0.0.3');
    }
    assert.deepEqual(assignSlots([]), []);
  });

  it('bad input is refused before any script exists', () => {
    const bad: Array<Partial<FirewallService>> = [
      { id: 'nothex' }, { vip: '10.0.0.300' }, { vip: 'fd00::1' }, { backends: ['x'] },
      { ports: [{ protocol: 'tcp', port: 0 }] }, { ports: [{ protocol: 'sctp' as 'tcp', port: 1 }] },
    ];
    for (const over of bad) assert.throws(() => compileSetService({ ...SVC, ...over }), InvalidParameterError, JSON.stringify(over));
  });

  it('the full ruleset carries services after the networks, and rejects two services on one VIP', () => {
    const full = compileFull([], [SVC]);
    assert.ok(full.endsWith(compileSetService(SVC)));
    assert.throws(() => compileFull([], [SVC, { ...SVC, id: 'f'.repeat(64) }]), InvalidParameterError);
  });
});
