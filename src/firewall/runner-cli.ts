/**
 * NftRunner over the `nft` binary: `nft -f -` with the script on stdin (one transaction per script),
 * entered into a network namespace with `nsenter --net=PATH` when asked. The reference implementation
 * and the fallback when libnftables cannot be loaded; costs one process spawn per call.
 */
import { spawn } from 'node:child_process';
import { KernelError } from '../errors.js';
import { nftError } from './nft-error.js';
import type { NftRunner } from './types.js';

export interface CliNftRunnerOptions {
  /** Network namespace to program (a bind-mounted netns file); default: the daemon's own. */
  netnsPath?: string;
  /** Path of the nft binary; default `nft` from PATH. */
  nftBinary?: string;
}

export class CliNftRunner implements NftRunner {
  private readonly command: string;
  private readonly args: readonly string[];
  private closed = false;

  constructor(options: CliNftRunnerOptions = {}) {
    const nft = options.nftBinary ?? 'nft';
    if (options.netnsPath === undefined) {
      this.command = nft;
      this.args = ['-f', '-'];
    } else {
      this.command = 'nsenter';
      this.args = [`--net=${options.netnsPath}`, '--', nft, '-f', '-'];
    }
  }

  run(script: string): Promise<string> {
    if (this.closed) return Promise.reject(new KernelError('nft runner is closed'));
    return new Promise((resolve, reject) => {
      const child = spawn(this.command, this.args, { stdio: ['pipe', 'pipe', 'pipe'] });
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      child.stdout.on('data', (b: Buffer) => stdout.push(b));
      child.stderr.on('data', (b: Buffer) => stderr.push(b));
      child.on('error', (err) => reject(new KernelError(`cannot run ${this.command}: ${err.message}`, undefined, { cause: err })));
      child.on('close', (code, signal) => {
        const err = Buffer.concat(stderr).toString('utf8');
        if (code === 0) resolve(Buffer.concat(stdout).toString('utf8'));
        else reject(nftError(err || `exited with ${signal ?? code}`));
      });
      // A failed child closes stdin early; the close handler reports the real error.
      child.stdin.on('error', () => {});
      child.stdin.end(script);
    });
  }

  close(): void {
    this.closed = true;
  }
}
