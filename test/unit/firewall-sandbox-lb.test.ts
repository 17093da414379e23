/** The in-sandbox balancing scripts (firewall/sandbox-lb.ts) and the balancer's use of its runners. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidParameterError } from '../../src/errors.js';
import { compileLbBase, compileLbClear, compileLbRemoveService, compileLbReplace, compileLbSetService, LB_TABLE, NftSandboxBalancer } from '../../src/firewall/sandbox-lb.js';
import { compileRemoveService, compileSetService } from '../../src/firewall/services.js';
import type { FirewallService, NftRunner } from '../../src/firewall/types.js';

const SVC: FirewallService = { id: 'e'.repeat(64), vip: '10.0.0.100', ports: [{ protocol: 'tcp', port: 80 }], backends: ['10.0.0.2', '10.0.0.3'] };
const SVC6: FirewallService = { id: 'f'.repeat(64), vip: 'fd00::64', ports: [], backends: ['fd00::2'] };

describe('balancing inside a sandbox: scripts', () => {
  it('the base: its own table, the VIP maps, a nat output chain whose four lookups are rewritten (never duplicated)', () => {
    const base = compileLbBase();
    assert.match(base, /^add table inet cnm_lb\n/);
    for (const map of ['vip_any', 'vip_ports', 'vip_any6', 'vip_ports6']) assert.match(base, new RegExp(`add map inet cnm_lb ${map} \\{ type `));
    assert.match(base, /add chain inet cnm_lb output \{ type nat hook output priority -100; policy accept; \}\nflush chain inet cnm_lb output\n/);
    assert.equal(base.match(/add rule inet cnm_lb output /g)?.length, 4);
    assert.doesNotMatch(base, /inet cnm /, "nothing of the host's table");
  });

  it("a service's objects are the host's, in the sandbox's table; replace starts from an empty table", () => {
    assert.equal(compileLbSetService(SVC), compileLbBase() + compileSetService(SVC, LB_TABLE));
    assert.equal(compileLbRemoveService(SVC6), compileLbBase() + compileRemoveService(SVC6, LB_TABLE));
    assert.match(compileLbSetService(SVC), /add element inet cnm_lb vip_ports \{ 10\.0\.0\.100 \. tcp \. 80 : goto svc_eeeeeeeeeeeeeeee \}/);
    assert.match(compileLbSetService(SVC6), /add element inet cnm_lb vip_any6 \{ fd00::64 : goto svc6_ffffffffffffffff \}/);
    assert.doesNotMatch(compileLbSetService(SVC), /inet cnm /);
    const replace = compileLbReplace([SVC, SVC6]);
    assert.ok(replace.startsWith(compileLbClear() + compileLbBase()), replace.slice(0, 200));
    assert.match(replace, /svc_eeee[\s\S]*svc6_ffff/);
    assert.equal(compileLbClear(), 'add table inet cnm_lb\ndelete table inet cnm_lb\n');
  });

  it('bad input is refused before a runner is made; a runner is closed after each call, failed or not', async () => {
    const made: string[] = [];
    const closed: string[] = [];
    let fail = false;
    const lb = new NftSandboxBalancer((path): NftRunner => {
      made.push(path);
      return {
        run: async () => {
          if (fail) throw new Error('nft failed (test)');
          return '';
        },
        close: () => void closed.push(path),
      };
    });
    await assert.rejects(lb.setService('/run/x', { ...SVC, backends: ['fd00::2'] }), InvalidParameterError);
    await assert.rejects(lb.setService('/run/x', { ...SVC, id: 'nope' }), InvalidParameterError);
    assert.deepEqual(made, []);
    await lb.setService('/run/a', SVC);
    fail = true;
    await assert.rejects(lb.clear('/run/b'), /nft failed/);
    assert.deepEqual(made, ['/run/a', '/run/b']);
    assert.deepEqual(closed, ['/run/a', '/run/b']);
  });
});
