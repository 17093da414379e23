import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { SystemError } from '../../src/errors.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { storeConformance } from '../conformance/store.js';

const STORE_MODULE = pathToFileURL(join(import.meta.dirname, '../../src/store/sqlite.ts')).href;

let dir = '';
let files = 0;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cnmt-store-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});
const newPath = () => join(dir, `store-${files++}.db`);

storeConformance('SqliteStore (file)', async () => {
  const store = await SqliteStore.open(newPath());
  return { store, cleanup: () => store.close() };
});

storeConformance('SqliteStore (:memory:)', async () => {
  const store = await SqliteStore.open(':memory:');
  return { store, cleanup: () => store.close() };
});

/** Runs an ESM snippet in a child node process with `SqliteStore` and `path` in scope. */
function runChild(path: string, body: string, onLine?: (line: string) => void) {
  const code = `const { SqliteStore } = await import(${JSON.stringify(STORE_MODULE)});
const path = ${JSON.stringify(path)};
${body}`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let pending = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const line of lines) onLine?.(line);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stderr })),
  );
  return { child, exited };
}

const pad = (i: number) => String(i).padStart(8, '0');

describe('SqliteStore specifics', () => {
  it('creates a versioned schema in WAL mode and keeps data and revisions across reopen', async () => {
    const path = newPath();
    const first = await SqliteStore.open(path);
    const r1 = await first.put('k', 'v1');
    await first.close();

    const raw = new Database(path, { readonly: true });
    try {
      assert.equal(raw.pragma('user_version', { simple: true }), 1);
      assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
    } finally {
      raw.close();
    }

    const second = await SqliteStore.open(path);
    try {
      assert.deepEqual(await second.get('k'), { key: 'k', value: 'v1', modRevision: r1 });
      assert.ok((await second.put('k2', 'v2')) > r1, 'revision counter persisted');
    } finally {
      await second.close();
    }
  });

  it('refuses a file whose schema is newer than this code', async () => {
    const path = newPath();
    const raw = new Database(path);
    raw.pragma('user_version = 99');
    raw.close();
    await assert.rejects(SqliteStore.open(path), (err: unknown) => {
      assert.ok(err instanceof SystemError);
      assert.match(err.message, /schema version 99 is newer/);
      return true;
    });
  });

  it('turns an unopenable path into a SystemError', async () => {
    await assert.rejects(SqliteStore.open(join(dir, 'no-such-dir', 'x.db')), SystemError);
  });

  it('compare-and-swap is atomic across processes sharing the file', { timeout: 120_000 }, async () => {
    const path = newPath();
    const store = await SqliteStore.open(path);
    await store.put('counter', '0');
    await store.close();
    const PROCESSES = 3;
    const INCREMENTS = 150;
    const body = `const store = await SqliteStore.open(path);
for (let done = 0; done < ${INCREMENTS}; ) {
  const entry = await store.get('counter');
  try {
    await store.put('counter', String(Number(entry.value) + 1), entry.modRevision);
    done++;
  } catch (err) {
    if (err.name !== 'StoreConflictError') throw err;
  }
}
await store.close();`;
    const results = await Promise.all(Array.from({ length: PROCESSES }, () => runChild(path, body).exited));
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    const reopened = await SqliteStore.open(path);
    try {
      assert.equal((await reopened.get('counter'))?.value, String(PROCESSES * INCREMENTS));
    } finally {
      await reopened.close();
    }
  });

  it('a writer killed with SIGKILL leaves a consistent prefix of its transactions', { timeout: 120_000 }, async () => {
    const path = newPath();
    // Each transaction writes a/i and b/i (2 KiB each, so the WAL checkpoints now and then) and moves
    // `count` to i; the child prints i after the commit returns.
    const body = `const store = await SqliteStore.open(path);
const start = Number((await store.get('count'))?.value ?? '0');
const filler = 'x'.repeat(2048);
for (let i = start + 1; ; i++) {
  const key = String(i).padStart(8, '0');
  await store.txn([
    { op: 'put', key: 'a/' + key, value: filler + i },
    { op: 'put', key: 'b/' + key, value: filler + i },
    { op: 'put', key: 'count', value: String(i) },
  ]);
  process.stdout.write(i + '\\n');
}`;
    let previous = 0;
    for (let round = 0; round < 3; round++) {
      let lastReported = 0;
      let killScheduled = false;
      const threshold = previous + 300;
      const run = runChild(path, body, (line) => {
        lastReported = Number(line);
        if (lastReported < threshold || killScheduled) return;
        killScheduled = true;
        // A few more milliseconds of writes, so the kill lands at an arbitrary point of a transaction.
        setTimeout(() => run.child.kill('SIGKILL'), 5 + round * 10);
      });
      const result = await run.exited;
      assert.equal(result.signal, 'SIGKILL', result.stderr);

      const raw = new Database(path);
      assert.equal(raw.pragma('integrity_check', { simple: true }), 'ok');
      raw.close();

      const store = await SqliteStore.open(path);
      try {
        const count = Number((await store.get('count'))?.value);
        assert.ok(count >= lastReported, `committed ${lastReported} reported, only ${count} survived`);
        const expected = Array.from({ length: count }, (_, i) => pad(i + 1));
        for (const table of ['a', 'b']) {
          const entries = await store.list(`${table}/`);
          assert.deepEqual(entries.map((e) => e.key.slice(2)), expected, `${table}/ is exactly 1..${count}`);
          assert.ok(entries.every((e, i) => e.value.endsWith(String(i + 1))));
        }
        const countRevision = (await store.get('count'))!.modRevision;
        assert.equal((await store.get(`a/${pad(count)}`))?.modRevision, countRevision, 'one revision per txn');
        assert.ok((await store.put('probe', String(round))) > countRevision, 'the store still takes writes');
        previous = count;
      } finally {
        await store.close();
      }
    }
  });
});
