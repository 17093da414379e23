import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { forEachRef, renderTable, shortId } from '../../src/cli/format.js';
import { filtersJson, keyValueMap, parseArgs, UsageError } from '../../src/cli/args.js';
import { DaemonError } from '../../src/cli/client.js';

describe('cli formatting and flags', () => {
  it('renders Docker-style tables with three spaces between columns', () => {
    const out = renderTable(['NETWORK ID', 'NAME'], [['0123456789ab', 'bridge'], ['ab', 'x']]);
    assert.equal(out, 'NETWORK ID     NAME\n0123456789ab   bridge\nab             x\n');
    assert.equal(shortId('f'.repeat(64), false), 'f'.repeat(12));
    assert.equal(shortId('f'.repeat(64), true).length, 64);
  });

  it('parses repeatable flags, key=value maps and filters', () => {
    const a = parseArgs(['--subnet', '10.0.0.0/24', '--subnet=10.1.0.0/24', '-o', 'k=v', 'name'], [
      { long: 'subnet', kind: 'list', description: '' },
      { long: 'opt', short: 'o', kind: 'list', description: '' },
    ]);
    assert.deepEqual(a.list('subnet'), ['10.0.0.0/24', '10.1.0.0/24']);
    assert.deepEqual(keyValueMap(a.list('opt')), { k: 'v' });
    assert.deepEqual(a.positionals, ['name']);
    assert.equal(filtersJson(['driver=bridge', 'label=a=b']), '{"driver":{"bridge":true},"label":{"a=b":true}}');
    assert.throws(() => filtersJson(['nofilter']), UsageError);
  });

  it('reports each failed reference and keeps going', async () => {
    const errors: string[] = [];
    const done: string[] = [];
    const failed = await forEachRef(['a', 'b', 'c', 'd'], (t) => errors.push(t), async (ref) => {
      if (ref === 'b') throw new DaemonError(404, 'network b not found');
      if (ref === 'c') throw new Error('local failure');
      done.push(ref);
    });
    assert.equal(failed, true);
    assert.deepEqual(done, ['a', 'd']);
    // Only the daemon's answers carry Docker's prefix.
    assert.deepEqual(errors, ['Error response from daemon: network b not found\n', 'local failure\n']);
  });
});
