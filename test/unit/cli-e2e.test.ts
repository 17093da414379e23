/**
 * The cnm CLI end to end against the API server on the real controller (recording kernel, memory store):
 * in-process main() and the bin/cnm launcher; the daemon's error messages are the controller's own.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { main } from '../../src/cli/cli.js';
import type { Io } from '../../src/cli/command.js';
import { startRealApi, type RealApi } from '../helpers/real-api.js';

const REPO = resolve(import.meta.dirname, '../..');

interface Result {
  code: number;
  out: string;
  err: string;
}

describe('cnm CLI against the API', () => {
  let api: RealApi;
  const cnm = async (argv: string[], answer = ''): Promise<Result> => {
    let out = '';
    let err = '';
    const io: Io = { out: (t) => void (out += t), err: (t) => void (err += t), prompt: async (q) => ((out += q), answer) };
    const code = await main(argv, io, { CNM_HOST: `unix://${api.socketPath}` });
    return { code, out, err };
  };
  const ok = async (argv: string[]) => {
    const r = await cnm(argv);
    assert.equal(r.code, 0, `cnm ${argv.join(' ')}: ${r.err}`);
    return r.out;
  };

  before(async () => {
    api = await startRealApi();
  });
  after(async () => api?.close());

  it('creates, lists and inspects networks', async () => {
    const id = (await ok(['network', 'create', '--subnet', '10.70.0.0/24', '--gateway', '10.70.0.254', '--label', 'team=x', 'cli1'])).trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    await ok(['network', 'create', 'cli10']);
    await ok(['network', 'create', 'cli2']);
    const table = (await ok(['network', 'ls'])).trimEnd().split('\n');
    assert.match(table[0]!, /^NETWORK ID {5}NAME {6}DRIVER {4}SCOPE$/);
    assert.deepEqual(table.slice(1).map((l) => l.split(/\s+/)[1]), ['bridge', 'cli1', 'cli2', 'cli10', 'host', 'none']);
    assert.equal((await ok(['network', 'ls', '-q', '-f', 'label=team=x'])).trim(), id.slice(0, 12));
    assert.equal((await ok(['network', 'ls', '--format', '{{.Name}}', '--filter', 'name=cli1'])).split('\n').filter(Boolean).sort().join(','), 'cli1,cli10');
    const [net] = JSON.parse(await ok(['network', 'inspect', 'cli1']));
    assert.equal(net.Id, id);
    assert.deepEqual(net.IPAM.Config, [{ Subnet: '10.70.0.0/24', Gateway: '10.70.0.254' }]);
    assert.equal((await ok(['network', 'inspect', '-f', '{{.Name}} {{.Driver}}', id.slice(0, 8)])).trim(), 'cli1 bridge');
  });

  it('creates sandboxes, connects and disconnects them', async () => {
    const sbId = (await ok(['sandbox', 'create', 'app', '--network', 'cli1', '--ip', '10.70.0.20', '--alias', 'api', '--hostname', 'apphost'])).trim();
    assert.match(sbId, /^[0-9a-f]{64}$/);
    await ok(['network', 'connect', '--alias', 'a2,a3', '--gw-priority', '5', 'cli2', 'app']);
    const connect = api.controller.calls.filter((c) => c.method === 'connect').at(-1)!.args[0] as Record<string, unknown>;
    assert.deepEqual([connect.aliases, connect.gwPriority], [['a2', 'a3'], 5]);
    const [sb] = JSON.parse(await ok(['sandbox', 'inspect', 'app']));
    assert.equal(sb.Hostname, 'apphost');
    assert.equal(sb.Networks.cli1.IPAddress, '10.70.0.20');
    assert.deepEqual(sb.Networks.cli1.Aliases, ['api']);
    assert.ok(sb.Networks.cli2);
    const ls = (await ok(['sandbox', 'ls'])).trimEnd().split('\n');
    assert.match(ls[0]!, /^SANDBOX ID\s+NAME\s+NETWORKS\s+IP ADDRESSES\s+PORTS\s+CREATED$/);
    assert.match(ls[1]!, new RegExp(`^${sbId.slice(0, 12)}\\s+app\\s+cli1,cli2\\s+10\\.70\\.0\\.20,172\\.17\\.\\d+\\.2\\s+.* ago$`));
    await ok(['network', 'disconnect', '-f', 'cli2', 'app']);
    assert.deepEqual(api.controller.calls.filter((c) => c.method === 'disconnect').at(-1)!.args, ['cli2', 'app', true]);
  });

  it('prints daemon errors as Docker does and exits 1; keeps going over several references', async () => {
    const cli1 = api.controller.getNetwork('cli1').network.id;
    const r = await cnm(['network', 'rm', 'cli1', 'ghost', 'cli2']);
    assert.equal(r.code, 1);
    assert.equal(r.out, 'cli2\n', r.err);
    assert.equal(
      r.err,
      `Error response from daemon: error while removing network: network cli1 id ${cli1} has active endpoints (app)\nError response from daemon: network ghost not found\n`,
    );
    assert.equal((await cnm(['network', 'rm', '-f', 'ghost'])).code, 0);
    const inspect = await cnm(['network', 'inspect', 'cli10', 'ghost']);
    assert.equal(inspect.code, 1);
    assert.equal(JSON.parse(inspect.out).length, 1);
  });

  it('asks before pruning unless -f, then lists what went', async () => {
    const declined = await cnm(['network', 'prune'], 'n');
    assert.equal(declined.code, 0);
    assert.match(declined.out, /^WARNING! This will remove all custom networks not used by at least one container\.\nAre you sure you want to continue\? \[y\/N\] $/);
    assert.equal(api.controller.calls.filter((c) => c.method === 'pruneNetworks').length, 0);
    const accepted = await cnm(['network', 'prune', '--filter', 'label!=keep'], 'y');
    assert.match(accepted.out, /Deleted Networks:\ncli10\n\n$/);
    assert.equal((await ok(['network', 'prune', '-f'])).trim(), '');
  });

  it('removes sandboxes (with --force)', async () => {
    assert.equal((await ok(['sandbox', 'rm', '-f', 'app'])).trim(), 'app');
    assert.deepEqual(api.controller.calls.filter((c) => c.method === 'removeSandbox').at(-1)!.args, ['app', true]);
    assert.equal((await cnm(['sandbox', 'rm', 'app'])).code, 1);
  });

  it('reports usage errors with exit 125 and prints help with exit 0', async () => {
    const missing = await cnm(['network', 'create']);
    assert.equal(missing.code, 125);
    assert.match(missing.err, /^"cnm network create" requires exactly 1 argument\.\nSee 'cnm network create --help'\./);
    assert.equal((await cnm(['network', 'ls', '--bogus'])).code, 125);
    assert.equal((await cnm(['frobnicate'])).code, 125);
    assert.equal((await cnm(['network', 'connect', '--gw-priority', 'high', 'a', 'b'])).code, 125);
    const help = await cnm(['network', 'create', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.out, /Usage: {2}cnm network create \[OPTIONS\] NETWORK/);
    assert.match(help.out, /--ip-range/);
    assert.equal((await cnm(['--help'])).code, 0);
    const badGateway = await cnm(['network', 'create', '--gateway', '10.0.0.1', 'x']);
    assert.deepEqual([badGateway.code, badGateway.err], [1, 'every ip-range or gateway must have a corresponding subnet\n']);
  });

  it('shows client and server versions', async () => {
    const out = await ok(['version']);
    assert.match(out, /^Client:\n Version: +\d/);
    assert.match(out, /\nServer: cnm\n Engine:\n  Version: +0\.1\.0\n  API version: +1\.51 \(minimum version 1\.40\)/);
    assert.equal((await ok(['version', '--format', '{{.Server.ApiVersion}}'])).trim(), '1.51');
  });

  it('finds the daemon through --host and says so when it cannot', async () => {
    const viaFlag = await main(['--host', `unix://${api.socketPath}`, 'network', 'ls', '-q'], { out: () => {}, err: () => {} }, {});
    assert.equal(viaFlag, 0);
    let err = '';
    const down = await main(['-H', join(api.dir, 'nothing.sock'), 'network', 'ls'], { out: () => {}, err: (t) => void (err += t) }, {});
    assert.equal(down, 1);
    assert.match(err, /^Cannot connect to the cnm daemon at unix:\/\/.*nothing\.sock\. Is the cnm daemon running\?/);
    assert.equal(await main(['-H', 'tcp://1.2.3.4:2375', 'network', 'ls'], { out: () => {}, err: () => {} }, {}), 125);
  });

  it('runs through bin/cnm with the right exit status', async () => {
    const run = (args: string[]) =>
      new Promise<Result>((done) => {
        execFile(join(REPO, 'bin/cnm'), args, { env: { ...process.env, CNM_HOST: `unix://${api.socketPath}`, CNM_FROM_SOURCE: '1' } }, (e, out, err) =>
          done({ code: e ? ((e as { code?: number }).code ?? 1) : 0, out, err }),
        );
      });
    const ls = await run(['network', 'ls', '--format', '{{.Name}}']);
    assert.equal(ls.code, 0, ls.err);
    assert.ok(ls.out.split('\n').includes('bridge'));
    const missing = await run(['network', 'inspect', 'ghost']);
    assert.equal(missing.code, 1);
    assert.equal(missing.err, 'Error response from daemon: network ghost not found\n');
    assert.equal((await run(['sandbox', 'create', '--nope'])).code, 125);
  });
});
