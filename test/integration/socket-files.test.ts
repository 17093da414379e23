/**
 * The daemon's socket and files on a real daemon: the socket is 0660 root:GROUP from the start
 * (--group, default root's group), state directories are 0700 / 0711, and a symlink, hard link or FIFO
 * planted where a sandbox file is written never redirects (or stalls) the daemon's root write.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { linkSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js';

const mode = (path: string) => lstatSync(path).mode & 0o7777;

describe('socket and files of a real daemon', () => {
  const daemons: TestDaemon[] = [];
  const scratch = mkdtempSync(join(tmpdir(), 'cnmt-victim-'));
  after(async () => {
    for (const d of daemons) await d.cleanup();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('makes the socket 0660 root:root by default and root:GROUP with --group', async () => {
    const d = await startTestDaemon();
    daemons.push(d);
    const st = lstatSync(d.socket);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o7777, 0o660);
    assert.equal(st.uid, 0);
    assert.equal(st.gid, 0);

    // "users" (gid 100 on Debian) stands for the docker-like group an administrator would pick.
    const gid = Number(execFileSync('getent', ['group', 'users'], { encoding: 'utf8' }).split(':')[2]);
    const g = await startTestDaemon(['--group', 'users']);
    daemons.push(g);
    const gst = lstatSync(g.socket);
    assert.equal(gst.mode & 0o7777, 0o660);
    assert.equal(gst.gid, gid);
    assert.equal((await g.api('GET', '/_ping')).status, 200);
  });

  it('refuses to start with a group that does not exist', async () => {
    await assert.rejects(startTestDaemon(['--group', 'cnmt-no-such-group']), /socket group "cnmt-no-such-group" not found/);
  });

  it('keeps the store 0700 and the exec root and sandbox files traversable but not listable', async () => {
    const d = daemons[0]!;
    assert.equal((await d.api('POST', '/cnm/v1/sandboxes', { Name: 'm1' })).status, 201);
    const id: string = (await d.api('GET', '/cnm/v1/sandboxes/m1')).json().Id;
    assert.equal(mode(d.root), 0o700);
    assert.equal(mode(d.execRoot), 0o711);
    assert.equal(mode(join(d.execRoot, 'netns')), 0o700);
    assert.equal(mode(join(d.execRoot, 'sandboxes')), 0o711);
    assert.equal(mode(join(d.execRoot, 'sandboxes', id)), 0o711);
    for (const f of ['resolv.conf', 'hosts', 'hostname']) assert.equal(mode(join(d.execRoot, 'sandboxes', id, f)), 0o644, f);
  });

  it('narrows existing state directories to their modes on start', async () => {
    const d = daemons[0]!;
    await d.stop();
    execFileSync('chmod', ['0777', d.root, d.execRoot, join(d.execRoot, 'netns')]);
    await d.start();
    assert.equal(mode(d.root), 0o700);
    assert.equal(mode(d.execRoot), 0o711);
    assert.equal(mode(join(d.execRoot, 'netns')), 0o700);
  });

  it('never writes through a symlink, hard link or FIFO planted in a sandbox directory', async () => {
    const d = daemons[0]!;
    assert.equal((await d.api('POST', '/networks/create', { Name: 'pl1' })).status, 201);
    assert.equal((await d.api('POST', '/networks/create', { Name: 'pl2' })).status, 201);
    assert.equal((await d.api('POST', '/cnm/v1/sandboxes', { Name: 'p1', Networks: [{ Network: 'pl1' }] })).status, 201);
    const id: string = (await d.api('GET', '/cnm/v1/sandboxes/p1')).json().Id;
    const dir = join(d.execRoot, 'sandboxes', id);

    // hosts → a symlink to a file the daemon must not write.
    const victim = join(scratch, 'victim-hosts');
    writeFileSync(victim, 'precious\n');
    unlinkSync(join(dir, 'hosts'));
    symlinkSync(victim, join(dir, 'hosts'));
    // resolv.conf → a hard link to another file.
    const hardVictim = join(d.execRoot, `cnmt-hard-${id.slice(0, 8)}`);
    writeFileSync(hardVictim, 'precious too\n');
    unlinkSync(join(dir, 'resolv.conf'));
    linkSync(hardVictim, join(dir, 'resolv.conf'));
    // hostname → a FIFO nobody reads (a plain open for writing would block the daemon for good).
    unlinkSync(join(dir, 'hostname'));
    execFileSync('mkfifo', [join(dir, 'hostname')]);

    // Connecting to pl2 rewrites hosts (a new address); a second network rewrites nothing else, so
    // also recreate the sandbox's files through a restart (which rewrites all three).
    const r = await d.api('POST', '/networks/pl2/connect', { Container: 'p1' });
    assert.equal(r.status, 200, r.body);
    assert.equal(readFileSync(victim, 'utf8'), 'precious\n');
    assert.ok(lstatSync(join(dir, 'hosts')).isFile(), 'the symlink was not replaced by a file');
    const ip2: string = (await d.api('GET', '/networks/pl2')).json().Containers[id].IPv4Address.split('/')[0];
    assert.match(readFileSync(join(dir, 'hosts'), 'utf8'), new RegExp(`^${ip2.replaceAll('.', '\\.')}\\t`, 'm'));

    // Disconnecting from pl1 back to pl2 only keeps the resolver; a restart rewrites every file.
    await d.stop();
    await d.start();
    assert.equal(readFileSync(hardVictim, 'utf8'), 'precious too\n');
    assert.equal(statSync(join(dir, 'resolv.conf')).nlink, 1);
    assert.match(readFileSync(join(dir, 'resolv.conf'), 'utf8'), /nameserver 127\.0\.0\.11/);
    assert.ok(lstatSync(join(dir, 'hostname')).isFile(), 'the FIFO was not replaced by a file');
    assert.equal(readFileSync(join(dir, 'hostname'), 'utf8').trim().length > 0, true);
    rmSync(hardVictim, { force: true });
  });

  it('never follows a symlink planted in place of a sandbox directory', async () => {
    const d = daemons[0]!;
    assert.equal((await d.api('POST', '/cnm/v1/sandboxes', { Name: 'p2', Networks: [{ Network: 'pl1' }] })).status, 201);
    const id: string = (await d.api('GET', '/cnm/v1/sandboxes/p2')).json().Id;
    const dir = join(d.execRoot, 'sandboxes', id);
    const victimDir = join(scratch, 'victim-dir');
    mkdirSync(victimDir);
    writeFileSync(join(victimDir, 'hosts'), 'precious\n');
    rmSync(dir, { recursive: true });
    symlinkSync(victimDir, dir);

    const r = await d.api('POST', '/networks/pl2/connect', { Container: 'p2' });
    assert.ok(r.status === 200 || (r.status >= 400 && r.json().message), r.body);
    assert.equal(readFileSync(join(victimDir, 'hosts'), 'utf8'), 'precious\n');
    assert.deepEqual(execFileSync('ls', ['-A', victimDir], { encoding: 'utf8' }).trim().split('\n'), ['hosts']);
    if (r.status === 200) {
      assert.ok(lstatSync(dir).isDirectory(), 'the symlink was not replaced by a directory');
      assert.equal(mode(dir), 0o711);
    }
    assert.equal((await d.api('GET', '/_ping')).status, 200);
  });

  it('removes a sandbox without following a symlink planted in place of the sandboxes directory', async () => {
    const d = daemons[0]!;
    assert.equal((await d.api('POST', '/cnm/v1/sandboxes', { Name: 'p3', Networks: [{ Network: 'none' }] })).status, 201);
    const id: string = (await d.api('GET', '/cnm/v1/sandboxes/p3')).json().Id;
    // No endpoint left: removing it writes no file first, only removes its directory.
    assert.equal((await d.api('POST', '/networks/none/disconnect', { Container: 'p3' })).status, 200);
    const sandboxes = join(d.execRoot, 'sandboxes');
    const victimDir = join(scratch, 'victim-sandboxes');
    mkdirSync(join(victimDir, id), { recursive: true });
    writeFileSync(join(victimDir, id, 'keep'), 'precious\n');
    renameSync(sandboxes, `${sandboxes}.real`);
    symlinkSync(victimDir, sandboxes);
    try {
      const r = await d.api('DELETE', '/cnm/v1/sandboxes/p3');
      assert.equal(r.status, 204, r.body);
      assert.equal(readFileSync(join(victimDir, id, 'keep'), 'utf8'), 'precious\n');
    } finally {
      rmSync(sandboxes, { recursive: true, force: true });
      renameSync(`${sandboxes}.real`, sandboxes);
    }
    assert.equal((await d.api('GET', '/cnm/v1/sandboxes/p3')).status, 404);
  });
});
