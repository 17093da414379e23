/**
 * Forgetting the kernel's connection tracking entries of a closed port. Removing a port's map element
 * stops new connections only: an existing flow keeps its conntrack entry, translated to the old
 * container address, for as long as packets keep coming (a UDP client sending every few seconds keeps it
 * forever, TCP's established timeout is five days), so a port published again elsewhere would never see
 * that client. Ports close only when their endpoint goes, so every entry whose reply comes from the
 * container's address is deleted: one `conntrack -D` per address, whatever the number of ports.
 * Runs in the daemon's own namespace (the one whose tables hold the translation).
 */
import { spawn } from 'node:child_process';
import { isIP } from 'node:net';
import type { Logger } from '../util/log.js';

export interface FlowCleaner {
  /** Delete the tracked flows answered by these addresses; never rejects (a failure is logged). */
  forgetFlowsTo(addresses: readonly string[]): Promise<void>;
}

export class ConntrackCli implements FlowCleaner {
  constructor(private readonly logger: Logger) {}

  async forgetFlowsTo(addresses: readonly string[]): Promise<void> {
    for (const address of new Set(addresses)) {
      const family = isIP(address);
      if (family === 0) continue;
      const result = await deleteFlows(family === 6 ? 'ipv6' : 'ipv4', address);
      // conntrack exits 1 when nothing matched ("0 flow entries have been deleted").
      if (result.code !== 0 && !/0 flow entries have been deleted/.test(result.stderr)) {
        this.logger.warn('conntrack entries of a closed port not deleted', { address, code: result.code, error: result.stderr.trim() });
      }
    }
  }
}

function deleteFlows(family: 'ipv4' | 'ipv6', replySource: string): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('conntrack', ['-D', '-f', family, '-r', replySource], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
    child.on('error', (err) => resolve({ code: -1, stderr: `cannot run conntrack: ${err.message}` }));
    child.on('close', (code) => resolve({ code: code ?? -1, stderr }));
  });
}
