/**
 * EtcdStore over TLS with client certificates (--cluster-store-cacert/-cert/-key), against a real
 * etcd that accepts only clients with a certificate from its CA: the right files work, a client
 * without a certificate or trusting another CA is refused with an error (and the same call with the
 * right files succeeds on the same server).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { EtcdStore } from '../../src/store/etcd.js';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd.js';
import { onPath, realClientSkip, realKernelSkip } from '../helpers/privileges.js';

const skip = realKernelSkip() || (onPath('etcd') ? (onPath('openssl') ? realClientSkip('etcdctl') : realClientSkip('openssl')) : realClientSkip('etcd'));

describe('EtcdStore over TLS on a real etcd', { skip }, () => {
  let cluster: EtcdCluster;
  before(async () => {
    cluster = await startEtcdCluster(1, { tls: true });
  });
  after(async () => {
    await cluster?.close();
  });

  it('works with the CA and a client certificate; refuses without one or with another CA', { timeout: 120_000 }, async () => {
    const tls = cluster.tls!;
    const prefix = `/cnmt/${randomBytes(4).toString('hex')}/`;
    const good = await EtcdStore.open({ endpoints: cluster.endpoints, prefix, tls: { caFile: tls.ca, certFile: tls.clientCert, keyFile: tls.clientKey } });
    try {
      const revision = await good.put('k', 'over tls');
      assert.deepEqual(await good.get('k'), { key: 'k', value: 'over tls', modRevision: revision });
    } finally {
      await good.close();
    }
    const attempts = [
      { name: 'no client certificate', tls: { caFile: tls.ca } },
      { name: 'another CA', tls: { caFile: tls.otherCa, certFile: tls.clientCert, keyFile: tls.clientKey } },
      { name: 'no TLS at all', tls: undefined },
    ];
    for (const attempt of attempts) {
      await assert.rejects(
        EtcdStore.open({ endpoints: cluster.endpoints, prefix, tls: attempt.tls, callTimeoutMs: 3000 }).then((s) => s.close()),
        (err: Error) => /cluster store/.test(err.message),
        attempt.name,
      );
    }
  });
});
