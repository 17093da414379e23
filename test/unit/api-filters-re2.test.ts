/**
 * Filter patterns run on RE2 (re2js) with Go's regexp semantics: unanchored search, Go syntax (no
 * lookaround, no backreferences: such patterns never match, as in Docker), linear time on patterns that
 * make a backtracking engine run for ever, and a per-request budget against patterns too big to
 * compile and match on one event loop.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { FilterArgs, MAX_PATTERN_PROGRAM, compileSearch } from '../../src/api/filters.js';
import { containerListFilter } from '../../src/api/render-container.js';
import type { SandboxDetail } from '../../src/controller/types.js';
import { InvalidParameterError } from '../../src/errors.js';

const id = 'f3a1c9e0b2d4'.repeat(5) + 'abcd';
const match = (pattern: string, source: string) => FilterArgs.fromPairs([['name', pattern]]).match('name', source);

describe('filter patterns (RE2, Go semantics)', () => {
  it('searches unanchored, as regexp.MatchString does', () => {
    assert.equal(match('web', 'my-web-1'), true);
    assert.equal(match('^web', 'my-web-1'), false);
    assert.equal(match('-1$', 'my-web-1'), true);
    assert.equal(match('(?i)WEB', 'my-web-1'), true);
    assert.equal(match('\\pL+-\\d', 'my-web-1'), true);
    assert.equal(match('[[:alpha:]]+', 'web'), true);
    assert.equal(match('\\Aweb\\z', 'web'), true);
    assert.equal(match('x{2,3}', 'axxa'), true);
  });

  it('never matches what Go refuses, even where JavaScript would match', () => {
    for (const pattern of ['(?=web)', '(?!x)', '(a)\\1', '(?<=m)y', '(', 'a{1001}', '\\']) {
      assert.equal(compileSearch(pattern).search, null, pattern);
      assert.equal(match(pattern, 'my-web-1'), false, pattern);
    }
    // An exact value still matches exactly, whatever its syntax.
    assert.equal(match('(', '('), true);
  });

  it('answers a pattern that backtracking engines take forever on, at once', () => {
    // With JavaScript's RegExp this takes ~2^64 steps against a 64-hex ID (the daemon stalled).
    const f = FilterArgs.fromPairs([['id', '^(?:[0-9a-f]|[0-9a-f])*z']]);
    for (let i = 0; i < 200; i++) assert.equal(f.match('id', randomBytes(32).toString('hex')), false);
    assert.equal(FilterArgs.fromPairs([['id', '^(?:[0-9a-f]|[0-9a-f])*$']]).match('id', id), true);
  });

  it('compiles each pattern once per request and refuses patterns beyond the budget with 400', () => {
    assert.ok(compileSearch('^web-[0-9]+$').programSize < 50);
    assert.throws(() => match('\\pL{1000}'.repeat(1000), 'x'), (err: Error) => err instanceof InvalidParameterError && /too complex/.test(err.message));
    assert.throws(() => match('(?:\\pL\\pL\\pL\\pL\\pL\\pL\\pL\\pL\\pL\\pL){200}', 'x'), /too complex/);
    // Many small patterns add up against one budget.
    const many = Array.from({ length: MAX_PATTERN_PROGRAM }, (_, i): [string, string] => ['name', `n${i}[a-z]+`]);
    assert.throws(() => FilterArgs.fromPairs(many).match('name', 'zzz'), /too complex/);
    // Refused whatever the order: also when an earlier pattern already matched.
    assert.throws(() => FilterArgs.fromPairs([['name', 'z'], ['name', '\\pL{1000}'.repeat(50)]]).match('name', 'z1'), /too complex/);
  });
});

describe('docker ps filters on sandboxes (moby daemon/list.go)', () => {
  const sandbox = (name: string, id: string) => ({ sandbox: { name, id, labels: {} }, endpoints: [] }) as unknown as SandboxDetail;
  const ps = (filters: Record<string, string[]>, detail: SandboxDetail) => containerListFilter(FilterArgs.fromJson(JSON.stringify(filters)))(detail);

  it('searches id patterns anywhere in the ID, as Docker does (not only as a prefix)', () => {
    const sb = sandbox('web', id);
    assert.equal(ps({ id: [id.slice(0, 12)] }, sb), true);
    assert.equal(ps({ id: [id.slice(20, 30)] }, sb), true);
    assert.equal(ps({ id: ['^c9e0'] }, sb), false);
    assert.equal(ps({ id: ['[0-9a-f]{64}'] }, sb), true);
  });

  it('matches name patterns against "/NAME" and "NAME"', () => {
    const sb = sandbox('web', id);
    assert.equal(ps({ name: ['^/web$'] }, sb), true);
    assert.equal(ps({ name: ['^web$'] }, sb), true);
    assert.equal(ps({ name: ['^/db'] }, sb), false);
  });
});
