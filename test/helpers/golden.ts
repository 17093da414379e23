/**
 * Golden files: the expected text of a generated script lives in test/golden/<dir>/<name>.
 * CNM_UPDATE_GOLDEN=1 rewrites them — and FAILS the test in the same run, so an update can never pass
 * silently (review the diff, then run again without it). Under CI (CI=true) the update mode is refused.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const GOLDEN_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', 'golden');

/** True when the run asks to rewrite golden files; throws under CI, where that must never happen. */
export function goldenUpdateMode(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.CNM_UPDATE_GOLDEN !== '1') return false;
  if (env.CI !== undefined && env.CI !== '' && env.CI !== 'false' && env.CI !== '0') {
    throw new Error('CNM_UPDATE_GOLDEN=1 is refused under CI: golden files are updated by hand, never by a CI run');
  }
  return true;
}

export function assertGolden(dir: string, name: string, actual: string, env: NodeJS.ProcessEnv = process.env): void {
  const path = join(GOLDEN_ROOT, dir, name);
  if (goldenUpdateMode(env)) {
    const old = existsSync(path) ? readFileSync(path, 'utf8') : undefined;
    if (old === actual) return;
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, actual);
    assert.fail(`golden file ${dir}/${name} rewritten: review the diff and run again without CNM_UPDATE_GOLDEN`);
  }
  assert.ok(existsSync(path), `golden file ${dir}/${name} missing: run with CNM_UPDATE_GOLDEN=1 (not under CI)`);
  assert.equal(actual, readFileSync(path, 'utf8'), `${dir}/${name} differs (CNM_UPDATE_GOLDEN=1 regenerates it, not under CI)`);
}
