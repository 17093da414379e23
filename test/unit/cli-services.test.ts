/**
 * `cnm service` and the --service flags of `sandbox create` and `network connect`, in process against
 * the API server on the real controller (fakes underneath): what reaches the controller, the table,
 * inspect, rm, errors and usage.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ApiServer } from '../../src/api/server.js';
import { main } from '../../src/cli/cli.js';
import type { Io } from '../../src/cli/command.js';
import { serveApi, startHarness, type Harness } from '../helpers/controller-harness.js';

interface Result {
  code: number;
  out: string;
  err: string;
}

describe('cnm service', () => {
  let h: Harness;
  let server: ApiServer;
  let sock = '';
  const cnm = async (argv: string[]): Promise<Result> => {
    let out = '';
    let err = '';
    const io: Io = { out: (t) => void (out += t), err: (t) => void (err += t), prompt: async () => 'n' };
    const code = await main(argv, io, { CNM_HOST: `unix://${sock}` });
    return { code, out, err };
  };
  const ok = async (argv: string[]) => {
    const r = await cnm(argv);
    assert.equal(r.code, 0, `cnm ${argv.join(' ')}: ${r.err}`);
    return r.out;
  };
  const backendsOf = (svc: string) => h.controller.getService(svc).backends.map((b) => b.sandbox.name).sort();

  before(async () => {
    h = await startHarness();
    ({ socketPath: sock, server } = await serveApi(h));
    await ok(['network', 'create', '--subnet', '10.90.0.0/24', 'app']);
  });
  after(async () => {
    await server?.close();
    await h?.cleanup();
  });

  it('creates vip and dnsrr services and prints their IDs', async () => {
    const id = (await ok(['service', 'create', 'web', '--network', 'app', '-p', '80', '--port', '53/udp', '-l', 'tier=front'])).trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    const web = h.controller.getService('web').service;
    assert.equal(web.id, id);
    assert.deepEqual(web.ports, [{ port: 80, protocol: 'tcp' }, { port: 53, protocol: 'udp' }]);
    assert.deepEqual(web.labels, { tier: 'front' });
    assert.match(web.vip!, /^10\.90\.0\.\d+\/24$/);
    await ok(['service', 'create', '--mode', 'dnsrr', '--network', 'app', 'db']);
    assert.equal(h.controller.getService('db').service.mode, 'dnsrr');
  });

  it('joins backends through sandbox create (both spellings) and network connect --service', async () => {
    await ok(['sandbox', 'create', 's1', '--network', 'app', '--service', 'web']);
    await ok(['sandbox', 'create', 's2', '--network', 'name=app,service=web,service=db']);
    await ok(['sandbox', 'create', 's3']);
    await ok(['network', 'connect', '--service', 'db', '--service', 'web', 'app', 's3']);
    assert.deepEqual(backendsOf('web'), ['s1', 's2', 's3']);
    assert.deepEqual(backendsOf('db'), ['s2', 's3']);
    await ok(['network', 'disconnect', 'app', 's3']);
    assert.deepEqual(backendsOf('web'), ['s1', 's2']);
  });

  it('lists services as a table, quietly and through a template', async () => {
    const web = h.controller.getService('web').service;
    const db = h.controller.getService('db').service;
    const lines = (await ok(['service', 'ls'])).trimEnd().split('\n');
    assert.match(lines[0]!, /^SERVICE ID\s+NAME\s+MODE\s+NETWORK\s+VIP\s+PORTS\s+BACKENDS$/);
    assert.match(lines[1]!, new RegExp(`^${db.id.slice(0, 12)}\\s+db\\s+dnsrr\\s+app\\s+1$`));
    assert.match(lines[2]!, new RegExp(`^${web.id.slice(0, 12)}\\s+web\\s+vip\\s+app\\s+${web.vip!.split('/')[0]!.replaceAll('.', '\\.')}\\s+80/tcp,53/udp\\s+2$`));
    assert.deepEqual((await ok(['service', 'ls', '-q'])).trim().split('\n'), [db.id.slice(0, 12), web.id.slice(0, 12)]);
    assert.equal((await ok(['service', 'list', '--format', '{{.Name}}={{.Backends}}'])).trim(), 'db=1\nweb=2');
  });

  it('inspects one or several services, by name or ID prefix', async () => {
    const web = h.controller.getService('web').service;
    const [shown] = JSON.parse(await ok(['service', 'inspect', web.id.slice(0, 10)]));
    assert.equal(shown.Name, 'web');
    assert.deepEqual(shown.Backends.map((b: { SandboxName: string }) => b.SandboxName), ['s1', 's2']);
    assert.equal((await ok(['service', 'inspect', '-f', '{{.Mode}} {{.VirtualIP}}', 'web', 'db'])).trim(), `vip ${web.vip!.split('/')[0]}\ndnsrr`);
    const partial = await cnm(['service', 'inspect', 'web', 'ghost']);
    assert.equal(partial.code, 1);
    assert.equal(JSON.parse(partial.out).length, 1);
    assert.equal(partial.err, 'Error response from daemon: No such service: ghost\n');
  });

  it('prints daemon errors and usage errors as Docker does', async () => {
    const dup = await cnm(['service', 'create', 'web', '--network', 'app']);
    assert.deepEqual([dup.code, dup.err], [1, 'Error response from daemon: service with name web already exists\n']);
    const port = await cnm(['service', 'create', 'x', '--network', 'app', '-p', '80/icmp']);
    assert.equal(port.code, 1);
    assert.match(port.err, /^Error response from daemon: invalid port "80\/icmp"/);
    const noNet = await cnm(['service', 'create', 'x']);
    assert.equal(noNet.code, 125);
    assert.match(noNet.err, /required flag "--network" not set/);
    assert.equal((await cnm(['service', 'create'])).code, 125);
    assert.equal((await cnm(['service', 'frob'])).code, 125);
    const help = await cnm(['service', '--help']);
    assert.equal(help.code, 0);
    for (const sub of ['create', 'inspect', 'ls', 'rm']) assert.match(help.out, new RegExp(`\\n +${sub} `));
    assert.match((await ok(['service', 'create', '--help'])).toString(), /--mode/);
    const rmNet = await cnm(['network', 'rm', 'app']);
    assert.equal(rmNet.code, 1);
  });

  it('removes services, keeps going over several references, and leaves the backends connected', async () => {
    const r = await cnm(['service', 'rm', 'web', 'ghost', 'db']);
    assert.equal(r.code, 1);
    assert.equal(r.out, 'web\ndb\n');
    assert.equal(r.err, 'Error response from daemon: No such service: ghost\n');
    assert.equal((await ok(['service', 'ls', '-q'])).trim(), '');
    assert.equal(h.controller.getSandbox('s1').endpoints.length, 1);
    assert.equal(h.firewall.services.size, 0);
  });
});
