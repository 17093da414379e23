/** The daemon flags of the API's limits and socket group: defaults, bounds, refusals. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseDaemonArgs, type DaemonConfig } from '../../src/daemon/config.js';
import { InvalidParameterError } from '../../src/errors.js';

const parse = (args: string[]) => parseDaemonArgs(args) as DaemonConfig;

describe('daemon API flags', () => {
  it('defaults to 512 connections, 256 queued changes and root’s group', () => {
    const c = parse([]);
    assert.equal(c.maxConnections, 512);
    assert.equal(c.maxQueuedChanges, 256);
    assert.equal(c.group, undefined);
  });

  it('accepts values within bounds and -G', () => {
    const c = parse(['--max-connections', '16', '--max-queued-changes', '65536', '-G', 'docker']);
    assert.equal(c.maxConnections, 16);
    assert.equal(c.maxQueuedChanges, 65536);
    assert.equal(c.group, 'docker');
    assert.equal(parse(['--group', '998']).group, '998');
  });

  it('refuses values out of bounds or not integers', () => {
    for (const args of [
      ['--max-connections', '15'],
      ['--max-connections', '65537'],
      ['--max-connections', '1e3'],
      ['--max-connections', '-1'],
      ['--max-connections', ''],
      ['--max-queued-changes', '0'],
      ['--max-queued-changes', '1.5'],
      ['--max-queued-changes', '99999999999999999999'],
      ['--group', ''],
      ['--group', 'a:b'],
      ['--group', 'x\n'],
    ]) {
      assert.throws(() => parse(args), InvalidParameterError, args.join(' '));
    }
  });
});
