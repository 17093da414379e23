/**
 * `cnm cni install`: the CNI plugin executable, a launcher that runs node on this checkout's plugin entry
 * (the compiled one when this cnm runs compiled, else the TypeScript source through tsx), written
 * atomically (temp file + rename) so a runtime never executes half of it.
 */
import { chmod, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const DEFAULT_CNI_BIN_DIR = '/opt/cni/bin';

export interface InstallOptions {
  binDir: string;
  /** The executable's name: the CNI `type` of the network configuration (default cnm). */
  name: string;
  /** node binary; default the one running now (runtimes may run plugins with a bare PATH). */
  node?: string;
}

/** The launcher for this checkout; `here` is this module's own file. */
export function launcherScript(here: string, node: string): string {
  const compiled = here.endsWith('.js');
  const srcDir = dirname(here);
  const entry = join(srcDir, compiled ? 'main.js' : 'main.ts');
  const root = resolve(srcDir, compiled ? '../../..' : '../..');
  const loader = compiled ? '' : ` --import "file://${join(root, 'node_modules/tsx/dist/loader.mjs')}"`;
  return `#!/bin/sh\n# cnm CNI plugin (written by \`cnm cni install\`; checkout ${root})\nexec "${node}"${loader} "${entry}" "$@"\n`;
}

export async function installPlugin(opts: InstallOptions): Promise<string> {
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(opts.name)) throw new Error(`invalid plugin name ${JSON.stringify(opts.name)}`);
  const here = fileURLToPath(import.meta.url);
  const target = join(resolve(opts.binDir), opts.name);
  await mkdir(dirname(target), { recursive: true });
  const tmp = `${target}.cnm-${process.pid}.tmp`;
  try {
    await writeFile(tmp, launcherScript(here, opts.node ?? process.execPath), { mode: 0o755 });
    await chmod(tmp, 0o755);
    await rename(tmp, target);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  return target;
}
