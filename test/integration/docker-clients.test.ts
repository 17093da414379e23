/**
 * Real Docker clients against cnm: the docker CLI on this machine (DOCKER_HOST=unix://…) and dockerode.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import Docker from 'dockerode';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js';
import { realClientSkip, realKernelSkip } from '../helpers/privileges.js';

function docker(d: TestDaemon, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn('docker', args, {
      env: { ...process.env, DOCKER_HOST: `unix://${d.socket}`, DOCKER_CONFIG: `${d.root}/.docker` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (x) => (stdout += x));
    p.stderr.on('data', (x) => (stderr += x));
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

async function dockerOk(d: TestDaemon, args: string[]): Promise<string> {
  const r = await docker(d, args);
  assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

describe('real Docker clients against cnm', { skip: realKernelSkip() }, () => {
  let d: TestDaemon;
  before(async () => {
    d = await startTestDaemon();
    assert.equal((await d.api('POST', '/cnm/v1/sandboxes', { Name: 'ds1', Networks: [{ Network: 'none' }] })).status, 201);
    assert.equal((await d.api('POST', '/cnm/v1/sandboxes', { Name: 'ds2' })).status, 201);
  });
  after(async () => d?.cleanup());

  it('docker network create / ls / inspect / connect / disconnect / rm / prune', { skip: realClientSkip('docker') }, async () => {
    const id = await dockerOk(d, ['network', 'create', '--subnet', '10.70.0.0/24', '--label', 'team=net', 'dn1']);
    assert.match(id, /^[0-9a-f]{64}$/);
    const ls = await dockerOk(d, ['network', 'ls']);
    for (const name of ['dn1', 'bridge', 'host', 'none']) assert.match(ls, new RegExp(`\\b${name}\\b`));
    const onlyBridges = await dockerOk(d, ['network', 'ls', '--filter', 'driver=bridge', '--format', '{{.Name}}']);
    assert.deepEqual(onlyBridges.split('\n').sort(), ['bridge', 'dn1']);
    const labelled = await dockerOk(d, ['network', 'ls', '-q', '--filter', 'label=team=net']);
    assert.equal(labelled, id.slice(0, 12));

    await dockerOk(d, ['network', 'connect', '--ip', '10.70.0.9', '--alias', 'web', 'dn1', 'ds2']);
    const inspected = JSON.parse(await dockerOk(d, ['network', 'inspect', 'dn1']))[0];
    const entry = Object.values(inspected.Containers as Record<string, any>)[0];
    assert.equal(entry.Name, 'ds2');
    assert.equal(entry.IPv4Address, '10.70.0.9/24');
    const gw = await dockerOk(d, ['network', 'inspect', '-f', '{{(index .IPAM.Config 0).Gateway}}', 'dn1']);
    assert.equal(gw, '10.70.0.1');

    const dup = await docker(d, ['network', 'connect', 'dn1', 'ds2']);
    assert.notEqual(dup.code, 0);
    assert.match(dup.stderr, /already exists/);
    const inUse = await docker(d, ['network', 'rm', 'dn1']);
    assert.notEqual(inUse.code, 0);
    assert.match(inUse.stderr, /active endpoints/);

    await dockerOk(d, ['network', 'disconnect', 'dn1', 'ds2']);
    await dockerOk(d, ['network', 'rm', 'dn1']);
    const gone = await docker(d, ['network', 'inspect', 'dn1']);
    assert.notEqual(gone.code, 0);

    await dockerOk(d, ['network', 'create', 'dn2']);
    const pruned = await dockerOk(d, ['network', 'prune', '-f']);
    assert.match(pruned, /dn2/);
    const predefined = await docker(d, ['network', 'rm', 'bridge']);
    assert.notEqual(predefined.code, 0);
  });

  it('dockerode drives networks and sees events', async () => {
    const client = new Docker({ socketPath: d.socket });
    const events: any[] = [];
    const stream = (await client.getEvents({ filters: { type: ['network'] } })) as NodeJS.ReadableStream & { destroy(): void };
    stream.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n').filter(Boolean)) events.push(JSON.parse(line));
    });
    const net = await client.createNetwork({ Name: 'dode', IPAM: { Driver: 'default', Config: [{ Subnet: '10.71.0.0/24' }] } });
    const listed = await client.listNetworks({ filters: { name: ['dode'] } });
    assert.equal(listed.length, 1);
    await net.connect({ Container: 'ds2', EndpointConfig: { IPAMConfig: { IPv4Address: '10.71.0.20' } } });
    const info = await net.inspect();
    assert.equal(Object.values(info.Containers as Record<string, any>)[0].IPv4Address, '10.71.0.20/24');
    await net.disconnect({ Container: 'ds2' });
    await net.remove();
    await assert.rejects(client.getNetwork('dode').inspect(), (err: any) => err.statusCode === 404);
    const deadline = Date.now() + 5000;
    while (events.length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    stream.destroy();
    assert.deepEqual(
      events.filter((e) => e.Actor?.Attributes?.name === 'dode').map((e) => e.Action),
      ['create', 'connect', 'disconnect', 'destroy'],
    );
  });
});
