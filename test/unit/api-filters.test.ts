/** Pure pieces of the API: Docker filters, time parsing, versions, event rendering, address helpers. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { subnetContains, splitCidr } from '../../src/api/addresses.js';
import { eventFilter, renderEvent } from '../../src/api/events.js';
import { FilterArgs, parseGoDuration, parseTimeOrDuration, parseUnixTimestamp, rfc3339ToNanos } from '../../src/api/filters.js';
import { humanDuration } from '../../src/api/human-duration.js';
import { compareVersions, splitVersion } from '../../src/api/router.js';
import type { ControllerEvent } from '../../src/controller/types.js';
import { InvalidParameterError } from '../../src/errors.js';

describe('FilterArgs', () => {
  it('reads both the map and the legacy list format', () => {
    const modern = FilterArgs.fromJson('{"name":{"a":true,"b":true}}');
    const legacy = FilterArgs.fromJson('{"name":["a","b"]}');
    assert.deepEqual(modern.get('name').sort(), ['a', 'b']);
    assert.deepEqual(legacy.get('name').sort(), ['a', 'b']);
    assert.deepEqual(FilterArgs.fromJson('').keys(), []);
    assert.deepEqual(FilterArgs.fromJson(null).keys(), []);
    for (const bad of ['[1]', '{"a":1}', '{"a":[1]}', 'nope', '"x"']) {
      assert.throws(() => FilterArgs.fromJson(bad), InvalidParameterError, bad);
    }
  });

  it('validates keys with Docker’s message', () => {
    assert.throws(() => FilterArgs.fromPairs([['x', '1']]).validate(['name']), { message: "invalid filter 'x'" });
    FilterArgs.fromPairs([['name', '1']]).validate(['name']);
  });

  it('matches exactly, by regular expression, by prefix and by label lists', () => {
    const f = FilterArgs.fromPairs([
      ['name', '^web'],
      ['id', 'abc'],
      ['label', 'a'],
      ['label', 'b=2'],
    ]);
    assert.equal(f.match('name', 'web-1'), true);
    assert.equal(f.match('name', 'my-web'), false);
    assert.equal(f.fuzzyMatch('id', 'abcdef'), true);
    assert.equal(f.fuzzyMatch('id', 'xabc'), false);
    assert.equal(f.exactMatch('unset', 'anything'), true);
    assert.equal(f.matchKVList('label', { a: '', b: '2' }), true);
    assert.equal(f.matchKVList('label', { a: 'x', b: '3' }), false);
    assert.equal(f.matchKVList('label', {}), false);
    // An invalid pattern never matches (as in Go), it does not throw.
    assert.equal(FilterArgs.fromPairs([['name', '(']]).match('name', 'x'), false);
  });
});

describe('time parsing', () => {
  it('parses Go durations', () => {
    assert.equal(parseGoDuration('1h30m'), 5400e9);
    assert.equal(parseGoDuration('1.5s'), 1.5e9);
    assert.equal(parseGoDuration('-2m'), -120e9);
    assert.equal(parseGoDuration('300ms'), 300e6);
    assert.equal(parseGoDuration('10'), undefined);
    assert.equal(parseGoDuration('h'), undefined);
  });

  it('parses prune `until` values like Docker’s timestamp.Parse', () => {
    const ref = 1_700_000_000_000_000_000n;
    assert.equal(parseTimeOrDuration('10m', ref), ref - 600_000_000_000n);
    assert.equal(parseTimeOrDuration('1700000000', ref), ref);
    assert.equal(parseTimeOrDuration('1700000000.5', ref), ref + 500_000_000n);
    assert.equal(parseTimeOrDuration('2023-11-14T22:13:20Z', ref), ref);
    assert.equal(parseTimeOrDuration('2023-11-14T22:13:20.25Z', ref), ref + 250_000_000n);
    assert.equal(parseTimeOrDuration('2023-11-14T23:13:20+01:00', ref), ref);
    assert.throws(() => parseTimeOrDuration('soon', ref), InvalidParameterError);
    assert.throws(() => parseTimeOrDuration('', ref), InvalidParameterError);
  });

  it('parses RFC3339Nano and Unix timestamps exactly', () => {
    assert.equal(rfc3339ToNanos('2023-11-14T22:13:20.123456789Z'), 1_700_000_000_123_456_789n);
    assert.equal(parseUnixTimestamp('1700000000.000000001'), 1_700_000_000_000_000_001n);
    assert.equal(parseUnixTimestamp(''), undefined);
    assert.throws(() => parseUnixTimestamp('12:00'), InvalidParameterError);
  });
});

describe('versions', () => {
  it('compares dotted versions numerically and splits the path prefix', () => {
    assert.equal(compareVersions('1.5', '1.40'), -1);
    assert.equal(compareVersions('1.51', '1.51.0'), 0);
    assert.deepEqual(splitVersion('/v1.45/networks/x'), { apiVersion: '1.45', path: '/networks/x' });
    assert.deepEqual(splitVersion('/networks'), { apiVersion: '1.51', path: '/networks' });
    assert.throws(() => splitVersion('/v2.0/networks'), /too new/);
  });
});

describe('events', () => {
  const ev = (over: Partial<ControllerEvent>): ControllerEvent => ({
    type: 'network',
    action: 'create',
    id: 'f'.repeat(64),
    attributes: { name: 'front', type: 'bridge' },
    timeNano: 1_700_000_000_123_456_789n,
    ...over,
  });

  it('renders exact times and Docker’s field order', () => {
    assert.equal(
      renderEvent(ev({})),
      `{"Type":"network","Action":"create","Actor":{"ID":"${'f'.repeat(64)}","Attributes":{"name":"front","type":"bridge"}},"scope":"local","time":1700000000,"timeNano":1700000000123456789}\n`,
    );
    const sandbox = JSON.parse(renderEvent(ev({ type: 'sandbox', attributes: { name: 's' } })));
    assert.deepEqual([sandbox.status, sandbox.id, sandbox.Type], ['create', 'f'.repeat(64), 'container']);
  });

  it('filters like moby’s events filter', () => {
    const f = (pairs: Array<[string, string]>) => eventFilter(FilterArgs.fromPairs(pairs));
    assert.equal(f([['type', 'network']])(ev({})), true);
    assert.equal(f([['type', 'container']])(ev({})), false);
    assert.equal(f([['network', 'front']])(ev({})), true);
    assert.equal(f([['network', 'fff']])(ev({})), true);
    assert.equal(f([['network', 'back']])(ev({})), false);
    assert.equal(f([['event', 'destroy']])(ev({})), false);
    assert.equal(f([['container', 's']])(ev({ type: 'sandbox', attributes: { name: 's' } })), true);
    assert.equal(f([['label', 'type=bridge']])(ev({})), true);
  });
});

describe('helpers', () => {
  it('checks subnet membership for both families', () => {
    assert.equal(subnetContains('10.0.0.0/24', '10.0.0.9'), true);
    assert.equal(subnetContains('10.0.0.0/24', '10.0.1.9'), false);
    assert.equal(subnetContains('fd00:1::/64', 'fd00:1::9'), true);
    assert.equal(subnetContains('fd00:1::/64', '10.0.0.9'), false);
    assert.deepEqual(splitCidr('10.0.0.2/24'), { address: '10.0.0.2', prefixLen: 24 });
  });

  it('words durations like go-units', () => {
    assert.equal(humanDuration(500), 'Less than a second');
    assert.equal(humanDuration(1000), '1 second');
    assert.equal(humanDuration(61_000), 'About a minute');
    assert.equal(humanDuration(5 * 60_000), '5 minutes');
    assert.equal(humanDuration(3_600_000), 'About an hour');
    assert.equal(humanDuration(3 * 86_400_000), '3 days');
  });
});
