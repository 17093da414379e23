/**
 * The daemon users run is the compiled one (`npm run build`, then `node dist/src/cli/main.js daemon`),
 * not the TypeScript sources through tsx (the loader alone is about 30 MiB of RSS and slows start-up).
 * The bench compiles the tree first, exactly as `npm run build` does, and runs the result.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../../test/helpers/daemon.js';
import { execWithInput } from './exec.js';

/** Where `npm run build` puts the CLI (tsconfig: outDir dist, rootDir .). */
export const DIST_ENTRY = join(REPO_ROOT, 'dist/src/cli/main.js');

/** Compile the tree (tsc -p tsconfig.json, as `npm run build`) and return how node runs the built CLI. */
export async function buildDist(): Promise<string[]> {
  const tsc = await execWithInput(
    process.execPath,
    [join(REPO_ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(REPO_ROOT, 'tsconfig.json')],
    '',
    600_000,
  );
  // tsc prints its errors on stdout.
  if (tsc.code !== 0) throw new Error(`npm run build (tsc) failed:\n${(tsc.stdout + tsc.stderr).trim().slice(0, 2000)}`);
  if (!existsSync(DIST_ENTRY)) throw new Error(`the build did not produce ${DIST_ENTRY}`);
  return [DIST_ENTRY];
}
