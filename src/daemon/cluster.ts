/**
 * With --cluster-store: the shared etcd store and this host's membership. Global-scope networks live
 * in this store (the controller reads and watches it: controller/cluster.ts), and the daemon logs every
 * host that joins or leaves. openClusterStore runs before anything else starts, so a daemon that cannot reach etcd
 * stops at once with an error naming the endpoints; joinCluster runs last, once the daemon serves.
 */
import { EtcdStore } from '../store/etcd.js';
import { Membership } from '../store/membership.js';
import type { Logger } from '../util/log.js';
import type { ClusterConfig } from './cluster-config.js';

export interface RunningCluster {
  store: EtcdStore;
  membership: Membership;
  close(): Promise<void>;
}

export async function openClusterStore(config: ClusterConfig, logger: Logger): Promise<EtcdStore> {
  return EtcdStore.open({ endpoints: config.endpoints, tls: config.tls, logger: logger.child({ component: 'cluster' }) });
}

export async function joinCluster(store: EtcdStore, config: ClusterConfig, hostId: string, logger: Logger): Promise<RunningCluster> {
  const log = logger.child({ component: 'cluster' });
  const membership = await Membership.join({ store, hostId, advertiseAddr: config.advertiseAddr, ttlSeconds: config.hostTtl, logger: log });
  const stopWatch = membership.watch((event) => {
    if (event.type === 'join') {
      if (event.host.id !== hostId) log.info('host joined', { hostId: event.host.id, advertiseAddr: event.host.advertiseAddr });
    } else {
      log.info('host left', { hostId: event.id });
    }
  });
  const hosts = await membership.hosts();
  log.info('joined the cluster', { url: config.url, hostId, advertiseAddr: config.advertiseAddr, hostTtl: config.hostTtl, hosts: hosts.map((h) => `${h.id}@${h.advertiseAddr}`) });
  return {
    store,
    membership,
    async close() {
      stopWatch();
      await membership.close();
      await store.close();
    },
  };
}
