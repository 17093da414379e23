/**
 * The KernelOps conformance suite: every implementation (netlink, iproute2, the fake) calls
 * kernelConformance once from its own *.test.ts file. Each case gets a fresh fixture, so cases never
 * see each other's links. `null` always means the fixture's host namespace (a throwaway cnmt-* namespace
 * for real kernels); sandbox namespaces come from fx.newNetnsPath().
 */
import { describe } from 'node:test';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { KernelOps } from '../../src/kernel/types.js';
import { createTestNetns, deleteTestNetns, netnsPath } from '../helpers/netns.js';
import { adoptionCases } from './kernel-adopt.js';
import { addressingCases } from './kernel-addressing.js';
import { namespaceAndLinkCases } from './kernel-links.js';
import { overlayCases } from './kernel-overlay.js';
import { ownershipCases } from './kernel-ownership.js';
import { caseRunner, type KernelFixture } from './kernel-support.js';

export type { KernelFixture } from './kernel-support.js';

const execFileAsync = promisify(execFile);

/**
 * `kind`: 'fake' leaves out the cases only a real kernel can pass (traffic, the neighbour table) instead
 * of registering them as skips: a skip is reserved for a missing privilege or program.
 */
export function kernelConformance(label: string, setup: () => Promise<KernelFixture>, kind: 'real' | 'fake' = 'real'): void {
  const runner = caseRunner(setup, kind === 'real');
  describe(`KernelOps conformance: ${label}`, () => {
    namespaceAndLinkCases(runner);
    addressingCases(runner);
    adoptionCases(runner);
    ownershipCases(runner);
    overlayCases(runner);
  });
}

/**
 * Fixture for implementations that talk to the real kernel: a throwaway host namespace that `null`
 * maps to, sandbox namespace files in a temp dir, everything removed by cleanup (also after failures).
 */
export async function realKernelFixture(
  makeKernel: (hostNetns: string) => KernelOps,
  options: { slowSteps?: boolean } = {},
): Promise<KernelFixture> {
  const hostName = createTestNetns();
  const dir = await mkdtemp(join(tmpdir(), 'cnmt-ns-'));
  const kernel = makeKernel(netnsPath(hostName));
  const handedOut: string[] = [];
  return {
    kernel,
    real: true,
    slowSteps: options.slowSteps ?? false,
    hostNetnsPath: netnsPath(hostName),
    newNetnsPath() {
      const path = join(dir, `cnmt-sb${handedOut.length}`);
      handedOut.push(path);
      return path;
    },
    async cleanup() {
      // Unpin through plain umount rather than the kernel under test: cleanup must work even when it is broken.
      // The kernel is closed first: an fd it still holds on a namespace file would make umount fail (EBUSY).
      try {
        kernel.close();
        for (const path of handedOut) await execFileAsync('umount', [path]).catch(() => undefined);
        await rm(dir, { recursive: true, force: true });
      } finally {
        deleteTestNetns(hostName);
      }
    },
  };
}
