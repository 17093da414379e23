/**
 * The API server's own error paths, on the real server with the fake controller: a handler that fails
 * with an unexpected error answers 500 with its message and logs it; a malformed request gets Docker's
 * {"message"} from the parser hook; the server keeps serving.
 */
import { describe, it, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startApiServer, type ApiServer } from '../../src/api/server.js';
import { createLogger } from '../../src/util/log.js';
import { FakeController, httpRequest } from '../helpers/fake-controller.js';
import { messageOf, rawRequest } from '../helpers/raw-http.js';

describe('API server error paths', () => {
  let dir: string;
  let socketPath: string;
  let server: ApiServer;
  const lines: string[] = [];
  const controller = new FakeController();

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cnmt-apierr-'));
    socketPath = join(dir, 'cnm.sock');
    server = await startApiServer({
      controller,
      socketPath,
      logger: createLogger('debug', {}, (line) => lines.push(line)),
      version: '0.1.0-test',
      daemon: { pid: process.pid, rootDir: dir, execRoot: dir },
    });
  });
  after(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers an unexpected error in a handler with 500 and a log line', async () => {
    const original = controller.listNetworks.bind(controller);
    controller.listNetworks = () => {
      throw new TypeError('cannot read properties of undefined (bug)');
    };
    try {
      const r = await httpRequest(socketPath, 'GET', '/networks');
      assert.equal(r.status, 500);
      assert.equal(r.json().message, 'cannot read properties of undefined (bug)');
      assert.ok(lines.some((l) => JSON.parse(l).level === 'error' && /request failed/.test(l) && /bug/.test(l)), lines.join('\n'));
    } finally {
      controller.listNetworks = original;
    }
    assert.equal((await httpRequest(socketPath, 'GET', '/networks')).status, 200);
  });

  it('answers what the HTTP parser refuses with a JSON message', async () => {
    const r = await rawRequest(socketPath, 'GET /_ping HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n');
    assert.equal(r.status, 400);
    assert.match(messageOf(r), /malformed HTTP request: HPE_/);
    assert.equal(r.closed, true);
    const big = await rawRequest(socketPath, `GET /_ping HTTP/1.1\r\nX: ${'a'.repeat(20_000)}\r\n\r\n`);
    assert.equal(big.status, 431);
  });
});
