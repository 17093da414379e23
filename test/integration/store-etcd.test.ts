/**
 * EtcdStore against a real etcd (Debian's etcd-server, one member in a throwaway namespace): the same
 * Store conformance suite SQLite and the in-memory store pass.
 */
import { randomBytes } from 'node:crypto';
import { after, before, describe } from 'node:test';
import { EtcdStore } from '../../src/store/etcd.js';
import { storeConformance } from '../conformance/store.js';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd.js';
import { onPath, realClientSkip, realKernelSkip } from '../helpers/privileges.js';

const skip = realKernelSkip() || (onPath('etcd') ? realClientSkip('etcdctl') : realClientSkip('etcd'));

describe('EtcdStore on a real etcd', { skip }, () => {
  let cluster: EtcdCluster;
  before(async () => {
    cluster = await startEtcdCluster(1);
  });
  after(async () => {
    await cluster?.close();
  });

  storeConformance('EtcdStore (real etcd, 1 member)', async () => {
    // A prefix of its own per case: the cases share one etcd, as clusters would.
    const store = await EtcdStore.open({ endpoints: cluster.endpoints, prefix: `/cnmt/${randomBytes(4).toString('hex')}/` });
    return { store, cleanup: () => store.close() };
  });
});
