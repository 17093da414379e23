/**
 * The benchmark's upstream resolver in its own process (so it never competes with the bench's event loop):
 * `nsenter --net=NS node --import tsx bench/dns-upstream.ts ADDRESS` answers NXDOMAIN to everything on
 * ADDRESS:53 and prints "ready" once listening.
 */
import { FakeUpstream } from '../src/dns/fake-upstream.js';

const address = process.argv[2] ?? '127.0.0.1';
const upstream = new FakeUpstream(new Map());
await upstream.start({ address, port: 53 });
process.stdout.write('ready\n');
process.on('SIGTERM', () => void upstream.stop().then(() => process.exit(0)));
