/** The request target as Go's net/http reads it for Docker: path, query, or a 400 — never a throw of another kind. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeComponent, parseRequestTarget } from '../../src/api/request-target.js';
import { InvalidParameterError } from '../../src/errors.js';

describe('request targets', () => {
  it('splits path and query and accepts the absolute form', () => {
    const t = parseRequestTarget('/v1.50/networks?filters=%7B%7D&x=a+b');
    assert.equal(t.path, '/v1.50/networks');
    assert.equal(t.query.get('filters'), '{}');
    assert.equal(t.query.get('x'), 'a b');
    assert.equal(parseRequestTarget('http://cnm/networks?a=1').path, '/networks');
    assert.equal(parseRequestTarget('http://cnm').path, '/');
    assert.equal(parseRequestTarget(undefined).path, '/');
    assert.equal(parseRequestTarget('//[').path, '//[');
  });

  it('refuses what Go’s url.ParseRequestURI / ParseQuery refuse with 400', () => {
    for (const bad of ['*', 'networks', '', '/networks/%zz', '/a%', '/a%f', '/%ff%fe', '/x?filters=%zz', '/x?a=%c3%28', '/x?%']) {
      assert.throws(() => parseRequestTarget(bad), InvalidParameterError, bad);
    }
    assert.throws(() => decodeComponent('%e0%80'), /not UTF-8/);
    assert.equal(decodeComponent('caf%C3%A9'), 'café');
  });
});
