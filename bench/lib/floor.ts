/**
 * The kernel floor for connect / disconnect: the same kernel work a bridge connect does, with nothing
 * but the tools, one spawn each. The sandbox namespace already exists (as it does for a running
 * sandbox). Connect = one `ip -batch` run inside the sandbox namespace:
 *   link add <host-veth> netns <host> master if<bridge-index> up type veth peer name eth1 address <mac>
 *   addr add <ip>/20 dev eth1 ; link set eth1 up ; route replace default via <gateway> dev eth1
 * (creating the host end *into* the host namespace lets one process do both sides: IFLA_MASTER is
 * resolved in the new link's namespace, hence the bridge's ifindex) plus one `nft -f` adding one set
 * element, run in the host namespace. Disconnect = one `ip link del` of the host end plus one `nft -f`
 * deleting the element. Bridge ports already on the network are plain veths whose peers sit in a
 * third namespace. The bridge is made as cnm makes its bridges (no multicast snooping), and the tools run
 * under `nsenter --net` rather than `ip -n`, which would also copy the machine's mount table each time
 * (one mount per sandbox namespace: O(endpoints) work that is not networking).
 */
import { createTestNetns, deleteTestNetns, netnsPath } from '../../test/helpers/netns.js';
import { execOk } from './exec.js';

const BRIDGE = 'cnmflbr0';
const HOST_VETH = 'cnmfv0';
const SUBNET_PREFIX = '10.77';
const GATEWAY = `${SUBNET_PREFIX}.0.1`;
const ENDPOINT = `${SUBNET_PREFIX}.15.250`;
const NFT_TABLE = 'cnmbench';

export class KernelFloor {
  private ports = 0;

  private constructor(
    private readonly hostNs: string,
    private readonly sandboxNs: string,
    private readonly fillerNs: string,
    private readonly bridgeIndex: number,
  ) {}

  static async create(): Promise<KernelFloor> {
    const hostNs = createTestNetns('cnmt-fh');
    const sandboxNs = createTestNetns('cnmt-fs');
    const fillerNs = createTestNetns('cnmt-ff');
    try {
      await execOk('ip', ['-n', hostNs, '-batch', '-'], `link add ${BRIDGE} up type bridge mcast_snooping 0\naddr add ${GATEWAY}/20 dev ${BRIDGE}\n`);
      const index = Number((await execOk('ip', ['-n', hostNs, '-o', 'link', 'show', BRIDGE])).split(':')[0]);
      await execOk(
        'nsenter',
        [`--net=${netnsPath(hostNs)}`, 'nft', '-f', '-'],
        `add table inet ${NFT_TABLE}\nadd set inet ${NFT_TABLE} endpoints { type ipv4_addr; }\n`,
      );
      return new KernelFloor(hostNs, sandboxNs, fillerNs, index);
    } catch (err) {
      for (const ns of [hostNs, sandboxNs, fillerNs]) deleteTestNetns(ns);
      throw err;
    }
  }

  /** Grow the bridge to `count` ports besides the measured one (in one batch: setup is not measured). */
  async fillTo(count: number): Promise<void> {
    if (count <= this.ports) return;
    let script = '';
    for (let i = this.ports; i < count; i++) {
      script += `link add cnmff${i} master ${BRIDGE} up type veth peer name f${i} netns ${this.fillerNs}\n`;
    }
    await execOk('ip', ['-n', this.hostNs, '-batch', '-'], script, 600_000);
    this.ports = count;
  }

  async connect(): Promise<void> {
    await execOk(
      'nsenter',
      [`--net=${netnsPath(this.sandboxNs)}`, 'ip', '-batch', '-'],
      `link add ${HOST_VETH} netns ${this.hostNs} master if${this.bridgeIndex} up type veth peer name eth1 address 02:42:0a:4d:0f:fa\n` +
        `addr add ${ENDPOINT}/20 dev eth1\n` +
        `link set eth1 up\n` +
        `route replace default via ${GATEWAY} dev eth1\n`,
    );
    await execOk('nsenter', [`--net=${netnsPath(this.hostNs)}`, 'nft', '-f', '-'], `add element inet ${NFT_TABLE} endpoints { ${ENDPOINT} }\n`);
  }

  async disconnect(): Promise<void> {
    await execOk('nsenter', [`--net=${netnsPath(this.hostNs)}`, 'ip', 'link', 'del', HOST_VETH]);
    await execOk('nsenter', [`--net=${netnsPath(this.hostNs)}`, 'nft', '-f', '-'], `delete element inet ${NFT_TABLE} endpoints { ${ENDPOINT} }\n`);
  }

  destroy(): void {
    for (const ns of [this.hostNs, this.sandboxNs, this.fillerNs]) deleteTestNetns(ns);
  }
}
