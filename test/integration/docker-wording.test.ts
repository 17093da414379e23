/**
 * Docker's words on Docker's routes (issue 10, item 10): a missing sandbox is `No such container: NAME`
 * where Docker's API speaks of containers — /containers/..., a network connect or disconnect naming a
 * Container — as dockerd says and the docker CLI prints; /cnm/v1 keeps `No such sandbox`.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js';

describe('Docker wording for missing containers', () => {
  let d: TestDaemon;
  before(async () => {
    d = await startTestDaemon();
    assert.equal((await d.api('POST', '/networks/create', { Name: 'hnet' })).status, 201);
    assert.equal((await d.api('POST', '/cnm/v1/sandboxes', { Name: 'hsb' })).status, 201);
  });
  after(async () => d?.cleanup());

  it('says "No such container" on Docker routes and "No such sandbox" on /cnm/v1', async () => {
    const connect = await d.api('POST', '/networks/hnet/connect', { Container: 'nosuch' });
    assert.equal(connect.status, 404);
    assert.equal(connect.json().message, 'No such container: nosuch');
    const disconnect = await d.api('POST', '/networks/hnet/disconnect', { Container: 'nosuch' });
    assert.equal(disconnect.status, 404);
    assert.equal(disconnect.json().message, 'No such container: nosuch');
    // Docker looks the container up first.
    const both = await d.api('POST', '/v1.50/networks/nonet/connect', { Container: 'nosuch' });
    assert.equal(both.json().message, 'No such container: nosuch');
    const inspect = await d.api('GET', '/containers/nosuch/json');
    assert.equal(inspect.json().message, 'No such container: nosuch');
    const cnm = await d.api('GET', '/cnm/v1/sandboxes/nosuch');
    assert.equal(cnm.status, 404);
    assert.equal(cnm.json().message, 'No such sandbox: nosuch');
    // The docker CLI shows dockerd's words.
    const cli = spawnSync('docker', ['network', 'connect', 'hnet', 'nosuch'], {
      env: { ...process.env, DOCKER_HOST: `unix://${d.socket}`, DOCKER_CONFIG: `${d.root}/.docker` },
      encoding: 'utf8',
    });
    assert.equal(cli.error, undefined, 'the docker CLI could not run');
    assert.equal(cli.status, 1);
    assert.equal(cli.stderr.trim(), 'Error response from daemon: No such container: nosuch');
    // The network side is worded as before; an existing sandbox connects.
    assert.equal((await d.api('POST', '/networks/nonet/connect', { Container: 'hsb' })).json().message, 'network nonet not found');
    assert.equal((await d.api('POST', '/networks/hnet/connect', { Container: 'hsb' })).status, 200);
  });
});
