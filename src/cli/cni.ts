/** `cnm cni install`: put the CNI plugin executable where container runtimes look for plugins. */
import { DEFAULT_CNI_BIN_DIR, installPlugin } from '../cni/install.js';
import { dispatch, type Io, type Subcommand } from './command.js';

const install: Subcommand = {
  name: 'install',
  usage: '[OPTIONS]',
  summary: 'Install the cnm CNI plugin (CNI type "cnm"): a launcher running this checkout\'s plugin with this node',
  flags: [
    { long: 'bin-dir', kind: 'string', description: `CNI plugin directory (default ${DEFAULT_CNI_BIN_DIR})` },
    { long: 'name', kind: 'string', description: 'Executable name, the CNI "type" of the network configuration (default cnm)' },
  ],
  minArgs: 0,
  maxArgs: 0,
  async run(args, io) {
    const path = await installPlugin({ binDir: args.string('bin-dir') || DEFAULT_CNI_BIN_DIR, name: args.string('name') || 'cnm' });
    io.out(`${path}\n`);
    return 0;
  },
};

export function cniCommand(argv: string[], io: Io): Promise<number> {
  return dispatch('cnm cni', 'The cnm CNI plugin', [install], argv, io);
}
