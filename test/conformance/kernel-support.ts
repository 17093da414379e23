/**
 * Shared pieces of the KernelOps conformance suite: the fixture contract and assertion helpers.
 */
import assert from 'node:assert/strict';
import { KernelError } from '../../src/errors.js';
import { inNetnsPath, ping as probePing } from '../helpers/probe.js';
import type { KernelOps, LinkInfo, NetnsRef, RouteInfo } from '../../src/kernel/types.js';

export interface KernelFixture {
  kernel: KernelOps;
  /** A fresh path where a sandbox namespace may be created with kernel.createNetns. */
  newNetnsPath(): string;
  /** Live traffic checks possible (false for the fake). */
  real: boolean;
  /** Each step spawns a process (iproute2): cases that need thousands of steps scale down. */
  slowSteps?: boolean;
  /** The namespace file `null` stands for (real kernels only). */
  hostNetnsPath?: string;
  cleanup(): Promise<void>;
}

/** How a group of cases gets a fresh fixture (and optionally one sandbox namespace) per case. */
export interface CaseRunner {
  /** The implementation drives the real kernel: cases about traffic and neighbours are registered only then. */
  real: boolean;
  withFixture(fn: (fx: KernelFixture, k: KernelOps) => Promise<void>): Promise<void>;
  withSandbox(fn: (fx: KernelFixture, k: KernelOps, sb: string) => Promise<void>): Promise<void>;
}

export function caseRunner(setup: () => Promise<KernelFixture>, real: boolean): CaseRunner {
  async function withFixture(fn: (fx: KernelFixture, k: KernelOps) => Promise<void>): Promise<void> {
    const fx = await setup();
    try {
      await fn(fx, fx.kernel);
    } finally {
      await fx.cleanup();
    }
  }
  return {
    real,
    withFixture,
    withSandbox: (fn) =>
      withFixture(async (fx, k) => {
        const sb = fx.newNetnsPath();
        await k.createNetns(sb);
        await fn(fx, k, sb);
      }),
  };
}

export function names(links: LinkInfo[]): string[] {
  return links.map((l) => l.name);
}

export function pick(r: RouteInfo | undefined): unknown[] {
  return [r?.via, r?.dev, r?.family];
}

export function findRoute(routes: RouteInfo[], dst: string): RouteInfo | undefined {
  return routes.find((r) => r.dst === dst);
}

export async function mustGet(k: KernelOps, ns: NetnsRef, name: string): Promise<LinkInfo> {
  const link = await k.linkGet(ns, name);
  assert.ok(link, `link ${name} exists`);
  assert.equal(link.name, name);
  return link;
}

export async function expectKernelError(p: Promise<unknown>, errnos: string[]): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof KernelError, `expected KernelError, got ${String(err)}`);
    assert.ok(errnos.includes(err.errno ?? ''), `errno ${err.errno} (${err.message}) not one of ${errnos.join(', ')}`);
    return true;
  });
}

/** Poll until `check` holds; fails after a generous deadline (an outcome check, not a timing assertion). */
export async function eventually(check: () => Promise<boolean>, what: string, deadlineMs = 5000): Promise<void> {
  const until = Date.now() + deadlineMs;
  while (!(await check())) {
    if (Date.now() > until) assert.fail(`never became true: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Ping from inside a namespace; retried because the first packets may race neighbour resolution.
 * false only when every attempt ran and was blocked; a ping that could not run throws.
 */
export async function ping(nsPath: string, ip: string, attempts = 3): Promise<boolean> {
  for (let i = 0; i < attempts; i++) {
    if ((await probePing(inNetnsPath(nsPath), ip)).outcome === 'reached') return true;
  }
  return false;
}
