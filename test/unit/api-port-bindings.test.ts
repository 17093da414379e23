/** POST /cnm/v1/sandboxes PortBindings (HostConfig.PortBindings' shape) → port requests; bad shapes are 400s. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { toCreateSandboxRequest } from '../../src/api/validation.js';
import { httpStatusOf } from '../../src/errors.js';

function rejects400(fn: () => unknown, match: RegExp): void {
  assert.throws(fn, (err: unknown) => httpStatusOf(err) === 400 && match.test((err as Error).message), String(match));
}

describe('PortBindings', () => {
  it('one request per binding; empty host fields mean the default address and any free port', () => {
    const req = toCreateSandboxRequest({
      Name: 'w',
      portbindings: {
        '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '8080' }, { HostPort: '8000-8010' }],
        '53/UDP': [{}],
        '9': null,
      },
    });
    assert.deepEqual(req.ports, [
      { protocol: 'tcp', containerPort: 80, hostIp: '127.0.0.1', hostPortStart: 8080, hostPortEnd: 8080 },
      { protocol: 'tcp', containerPort: 80, hostIp: '', hostPortStart: 8000, hostPortEnd: 8010 },
      { protocol: 'udp', containerPort: 53, hostIp: '', hostPortStart: 0, hostPortEnd: 0 },
    ]);
    assert.equal(toCreateSandboxRequest({ Name: 'w', PortBindings: {} }).ports, undefined);
  });

  it("bad keys, protocols, host ports and shapes are 400s in Docker's words", () => {
    rejects400(() => toCreateSandboxRequest({ PortBindings: { 'abc/tcp': [{}] } }), /^invalid port specification: "abc"$/);
    rejects400(() => toCreateSandboxRequest({ PortBindings: { '80/icmp': [{}] } }), /^invalid proto: icmp$/);
    rejects400(() => toCreateSandboxRequest({ PortBindings: { '80/tcp': [{ HostPort: '99999' }] } }), /^invalid port specification: "99999"$/);
    rejects400(() => toCreateSandboxRequest({ PortBindings: { '80-81/tcp': [{}] } }), /one container port per key/);
    rejects400(() => toCreateSandboxRequest({ PortBindings: { '80/tcp': [{ HostPort: 8080 }] } }), /PortBindings/);
    rejects400(() => toCreateSandboxRequest({ PortBindings: ['80/tcp'] }), /PortBindings/);
  });
});
