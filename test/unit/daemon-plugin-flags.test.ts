/** `--docker-plugin [NAME]` and `--docker-plugin-dir`: the default name, the socket path, refusals. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseDaemonArgs, type DaemonConfig } from '../../src/daemon/config.js';
import { InvalidParameterError } from '../../src/errors.js';

const parse = (args: string[]) => parseDaemonArgs(args) as DaemonConfig;

describe('daemon Docker plugin flags', () => {
  it('is off by default', () => {
    assert.equal(parse([]).dockerPlugin, undefined);
  });

  it('takes the name cnm when none is given, also before another flag', () => {
    assert.deepEqual(parse(['--docker-plugin']).dockerPlugin, { name: 'cnm', socket: '/run/docker/plugins/cnm.sock' });
    const c = parse(['--docker-plugin', '--root', '/tmp/r']);
    assert.deepEqual(c.dockerPlugin, { name: 'cnm', socket: '/run/docker/plugins/cnm.sock' });
    assert.equal(c.root, '/tmp/r');
  });

  it('takes a name and a directory', () => {
    assert.deepEqual(parse(['--docker-plugin', 'cnmt-1a', '--docker-plugin-dir', '/tmp/p/']).dockerPlugin, {
      name: 'cnmt-1a',
      socket: '/tmp/p/cnmt-1a.sock',
    });
    assert.equal(parse(['--docker-plugin=net.x']).dockerPlugin?.socket, '/run/docker/plugins/net.x.sock');
  });

  it('refuses names that are no file name or that Docker cannot use', () => {
    for (const name of ['../etc/x', 'a/b', '.hidden', 'x'.repeat(65), 'sp ace']) {
      assert.throws(() => parse([`--docker-plugin=${name}`]), (e: unknown) => e instanceof InvalidParameterError && /invalid --docker-plugin/.test(String(e)), name);
    }
    assert.throws(() => parse(['--docker-plugin-dir', '/tmp']), /needs --docker-plugin/);
  });
});
