/** `cnm sandbox create -p`: Docker's specs become PortBindings; `cnm sandbox ls` prints them as docker ps does. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseArgs, UsageError, type FlagSpec } from '../../src/cli/args.js';
import { createSandboxBody, portsText } from '../../src/cli/sandbox.js';

const specs: FlagSpec[] = [
  { long: 'network', kind: 'list', description: '' },
  { long: 'publish', short: 'p', kind: 'list', description: '' },
];

describe('cnm sandbox create -p / ls PORTS', () => {
  it('repeatable -p / --publish become one PortBindings map', () => {
    const b = createSandboxBody(parseArgs(['web', '--network', 'n', '-p', '8080:80', '--publish', '127.0.0.1::53/udp', '-p', '9000-9001:90-91'], specs));
    assert.deepEqual(b.PortBindings, {
      '80/tcp': [{ HostIp: '', HostPort: '8080' }],
      '53/udp': [{ HostIp: '127.0.0.1', HostPort: '' }],
      '90/tcp': [{ HostIp: '', HostPort: '9000' }],
      '91/tcp': [{ HostIp: '', HostPort: '9001' }],
    });
    assert.equal(createSandboxBody(parseArgs(['web'], specs)).PortBindings, undefined);
  });

  it("a bad spec is a usage error in Docker's words", () => {
    assert.throws(
      () => createSandboxBody(parseArgs(['web', '-p', '8000-8002:80-81'], specs)),
      (err: unknown) => err instanceof UsageError && /invalid ranges specified for container and host Ports: 80-81 and 8000-8002/.test(err.message),
    );
  });

  it('PORTS folds runs published on the same numbers, lists moved ports one by one', () => {
    const ports = {
      '80/tcp': [{ HostIp: '0.0.0.0', HostPort: '8080' }],
      '8100/tcp': [{ HostIp: '0.0.0.0', HostPort: '8100' }],
      '8101/tcp': [{ HostIp: '0.0.0.0', HostPort: '8101' }],
      '90/tcp': [{ HostIp: '0.0.0.0', HostPort: '9000' }],
      '91/tcp': [{ HostIp: '0.0.0.0', HostPort: '9001' }],
      '53/udp': [{ HostIp: '127.0.0.1', HostPort: '5353' }],
    };
    assert.equal(
      portsText(ports),
      '0.0.0.0:8080->80/tcp, 0.0.0.0:9000->90/tcp, 0.0.0.0:9001->91/tcp, 0.0.0.0:8100-8101->8100-8101/tcp, 127.0.0.1:5353->53/udp',
    );
    assert.equal(portsText(undefined), '');
  });
});
