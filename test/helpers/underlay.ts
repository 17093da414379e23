/**
 * Hosts on an underlay for multi-daemon tests and benches: a bridge `cnmul0` in its own namespace and
 * `count` host namespaces, each wired to it by a veth whose host end `cnmeth0` has 10.199.0.<i>/24.
 * Returns the namespaces (the underlay's first); the caller deletes them (deleteTestNetns), last first.
 */
import { execFileSync } from 'node:child_process';
import { createTestNetns } from './netns.js';

export const underlayAddress = (i: number): string => `10.199.0.${i}`;

export function makeUnderlayHosts(count: number, created: string[]): { underlay: string; hosts: string[] } {
  const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const underlay = createTestNetns();
  created.push(underlay);
  ip('-n', underlay, 'link', 'add', 'cnmul0', 'type', 'bridge');
  ip('-n', underlay, 'link', 'set', 'cnmul0', 'up');
  const hosts: string[] = [];
  for (let i = 1; i <= count; i++) {
    const hostNs = createTestNetns();
    created.push(hostNs);
    hosts.push(hostNs);
    ip('-n', underlay, 'link', 'add', `cnmul${i}`, 'type', 'veth', 'peer', 'name', 'cnmeth0', 'netns', hostNs);
    ip('-n', underlay, 'link', 'set', `cnmul${i}`, 'master', 'cnmul0', 'up');
    ip('-n', hostNs, 'addr', 'add', `${underlayAddress(i)}/24`, 'dev', 'cnmeth0');
    ip('-n', hostNs, 'link', 'set', 'cnmeth0', 'up');
  }
  return { underlay, hosts };
}
