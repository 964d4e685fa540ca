import { mkdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { startExampleApi, type ExampleApi } from '../scripts/example-api-server.js';
import { RunStore } from '../src/runs/run-store.js';
import { runCli, spawnCli } from './helpers/cli.js';
import { expectEveryIdOnce, fleetFixture } from './helpers/fleet-fixture.js';

// Issue #21: credentials rotated without a restart. Real worker processes and a real API that records which token
// each request used, and when; the credentials file is replaced mid-run as Vault agents (rename over) and
// Kubernetes secret volumes (a `..data` symlink swap) do.

let api: ExampleApi | undefined;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  await api?.close();
  api = undefined;
  for (const c of cleanups.splice(0)) await c();
});

const ids = (n: number, p = 'id') => Array.from({ length: n }, (_, i) => `${p}-${i}`);

/** Writes `content` to a temporary name beside `file`, then renames it over `file` (one atomic step, a new inode). */
function renameOver(file: string, content: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, content);
  renameSync(tmp, file);
}

async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** When the API last (and first) saw `token`, epoch ms; undefined when never. */
const lastUse = (a: ExampleApi, token: string) => a.acceptedAt.get(token)?.at(-1);
const firstUse = (a: ExampleApi, token: string) => a.acceptedAt.get(token)?.[0];

describe('credentials rotated mid-run, no restart', () => {
  it('credentialsFile renamed over, 2 worker processes + pull: the removed token stops within 10 s, the new one is used, 0 failed, every ID once', async () => {
    const all = ids(440);
    // The API takes every token (budgets only to record when each was used); pullq's budget paces the run (~11 s).
    api = await startExampleApi({ auth: { type: 'header', tokens: ['rot-old-a', 'rot-keep-b', 'rot-new-c'] }, budgets: { '*': { requests: 10_000, perSeconds: 1 } }, latencyMs: 5 });
    const f = fleetFixture({
      label: 'rotation',
      config: { request: { url: `${api.url}/items/{id}` }, auth: { type: 'header', credentialsFile: 'creds.json' }, budget: { requests: 20, perSeconds: 1 }, worker: { concurrency: 8 }, enqueue: { batchSize: 20 } },
      ids: all,
      env: { PULLQ_LOG_LEVEL: 'info' },
      cleanups,
    });
    const file = path.join(f.dir, 'creds.json');
    writeFileSync(file, JSON.stringify([{ token: 'rot-old-a', name: 'old-a' }, { token: 'rot-keep-b', name: 'keep-b' }]));
    const workers = f.workers(2);
    const store = new RunStore(f.redis, f.queue);
    const pull = spawnCli(['pull', 'ids.txt', '--run', 'rot'], { cwd: f.dir, env: f.env });
    await waitFor('60 IDs done', async () => ((await store.status('rot'))?.succeeded ?? 0) >= 60);
    renameOver(file, JSON.stringify([{ token: 'rot-keep-b', name: 'keep-b' }, { token: 'rot-new-c', name: 'new-c', budget: { requests: 20, perSeconds: 1 } }]));
    const renamedAt = Date.now();
    const r = await pull.done;
    expect(r.code).toBe(0);
    const out = expectEveryIdOnce(f.dir, 'rot', all);
    expect(out.failed).toEqual([]);
    const lastOld = lastUse(api, 'rot-old-a')!;
    const lastNew = lastUse(api, 'rot-new-c')!;
    console.log(`rotation (rename over): old token last used ${lastOld - renamedAt} ms after the rename; new token first used ${firstUse(api, 'rot-new-c')! - renamedAt} ms after; run went on ${lastNew - renamedAt} ms after it`);
    expect(lastOld).toBeLessThanOrEqual(renamedAt + 10_000);
    // The run went on well past the old token's end: it stopped because it was removed, not because the run ended.
    expect(lastNew - lastOld).toBeGreaterThan(2_000);
    expect(firstUse(api, 'rot-new-c')!).toBeGreaterThan(renamedAt);
    expect(api.acceptedAt.get('rot-keep-b')!.some((t) => t > lastOld)).toBe(true);
    // Every replica said so, once.
    for (const w of workers) w.child.kill('SIGTERM');
    const logs = await Promise.all(workers.map((w) => w.done));
    for (const l of logs) expect(l.stderr.match(/credentials reloaded from [^:]*creds\.json: 2 in force \(\+1, -1\)/g)).toHaveLength(1);
    expect(r.stderr).toMatch(/credentials reloaded from .*creds\.json: 2 in force \(\+1, -1\)/);
    // status and pullq credentials show the set in force.
    const creds = JSON.parse((await runCli(['credentials', '--json'], { cwd: f.dir, env: f.env })).stdout) as { credentials: { name: string; source: string }[] };
    expect(creds.credentials.map((c) => [c.name, c.source])).toEqual([['keep-b', 'credentialsFile'], ['new-c', 'credentialsFile']]);
    const status = JSON.parse((await runCli(['status', '--run', 'rot', '--json'], { cwd: f.dir, env: f.env })).stdout) as { credentials: { label: string; budget: string }[] };
    expect(status.credentials.map((c) => c.label)).toEqual(['keep-b', 'new-c']);
  });

  it('tokensFile in a Kubernetes secret volume (..data symlink swap), poll slower than the run: SIGHUP reloads a worker at once', async () => {
    const all = ids(160);
    api = await startExampleApi({ auth: { type: 'header', tokens: ['k8s-old', 'k8s-new'] }, budgets: { '*': { requests: 10_000, perSeconds: 1 } }, latencyMs: 5 });
    const f = fleetFixture({
      label: 'rot-k8s',
      config: { request: { url: `${api.url}/items/{id}` }, auth: { type: 'header', tokensFile: 'secret/tokens' }, budget: { requests: 25, perSeconds: 1 }, worker: { concurrency: 8 }, enqueue: { batchSize: 20 } },
      ids: all,
      // A poll that never comes during the test: only SIGHUP can reload.
      env: { PULLQ_LOG_LEVEL: 'info', PULLQ_CREDENTIALS_POLL_MS: '600000' },
      cleanups,
    });
    // The layout kubelet writes: secret/..<stamp>/tokens, secret/..data → ..<stamp>, secret/tokens → ..data/tokens.
    const vol = path.join(f.dir, 'secret');
    const version = (stamp: string, tokens: string) => {
      mkdirSync(path.join(vol, stamp), { recursive: true });
      writeFileSync(path.join(vol, stamp, 'tokens'), tokens);
    };
    version('..2026_12_03_01', 'k8s-old\n');
    symlinkSync('..2026_12_03_01', path.join(vol, '..data'));
    symlinkSync('..data/tokens', path.join(vol, 'tokens'));
    const [worker] = f.workers(1);
    const store = new RunStore(f.redis, f.queue);
    expect((await runCli(['enqueue', 'ids.txt', '--run', 'k8s'], { cwd: f.dir, env: f.env })).code).toBe(0);
    await waitFor('30 IDs done', async () => ((await store.status('k8s'))?.succeeded ?? 0) >= 30);
    version('..2026_12_03_02', '# rotated\nk8s-new\n');
    symlinkSync('..2026_12_03_02', path.join(vol, '..data_tmp'));
    renameSync(path.join(vol, '..data_tmp'), path.join(vol, '..data'));
    await sleep(300);
    // Nothing changes without the signal (the poll is 10 minutes away).
    const before = lastUse(api, 'k8s-old')!;
    expect(api.acceptedAt.get('k8s-new')).toBeUndefined();
    const hupAt = Date.now();
    worker!.child.kill('SIGHUP');
    await waitFor('the run complete', async () => (await store.status('k8s'))?.complete === true);
    const lastOld = lastUse(api, 'k8s-old')!;
    console.log(`rotation (SIGHUP, symlink swap): old token last used ${lastOld - hupAt} ms after SIGHUP; new token first used ${firstUse(api, 'k8s-new')! - hupAt} ms after`);
    expect(before).toBeGreaterThan(hupAt - 1000);
    expect(lastOld).toBeLessThan(hupAt + 2_000);
    expect(firstUse(api, 'k8s-new')!).toBeLessThan(hupAt + 2_000);
    expect(lastUse(api, 'k8s-new')! - lastOld).toBeGreaterThan(1_000);
    // The worker kept running after SIGHUP (Node's default would have ended it) and stops on SIGTERM as ever.
    expect(worker!.child.exitCode).toBeNull();
    worker!.child.kill('SIGTERM');
    const w = await worker!.done;
    expect(w.code).toBe(0);
    expect(w.stderr).toMatch(/credentials reloaded from [^"]*secret\/tokens: 1 in force \(\+1, -1\)/);
    expect(expectEveryIdOnce(f.dir, 'k8s', all).failed).toEqual([]);
  });

  it('an empty file mid-run changes nothing but one warning: the pull completes with the old set', async () => {
    const all = ids(120);
    api = await startExampleApi({ auth: { type: 'header', tokens: ['keep-1', 'keep-2'] }, budgets: { '*': { requests: 10_000, perSeconds: 1 } }, latencyMs: 5 });
    const f = fleetFixture({
      label: 'rot-empty',
      config: { request: { url: `${api.url}/items/{id}` }, auth: { type: 'header', credentialsFile: 'creds.json' }, budget: { requests: 20, perSeconds: 1 }, worker: { concurrency: 8 }, enqueue: { batchSize: 20 } },
      ids: all,
      env: { PULLQ_CREDENTIALS_POLL_MS: '300' },
      cleanups,
    });
    const file = path.join(f.dir, 'creds.json');
    writeFileSync(file, JSON.stringify(['keep-1', 'keep-2']));
    const store = new RunStore(f.redis, f.queue);
    const pull = spawnCli(['pull', 'ids.txt', '--run', 'empty'], { cwd: f.dir, env: f.env });
    await waitFor('20 IDs done', async () => ((await store.status('empty'))?.succeeded ?? 0) >= 20);
    renameOver(file, '[]');
    const emptiedAt = Date.now();
    const r = await pull.done;
    expect(r.code).toBe(0);
    expect(expectEveryIdOnce(f.dir, 'empty', all).failed).toEqual([]);
    expect(r.stderr.match(/credentials file .*creds\.json refused \(lists no tokens\); keeping the 2 in force/g)).toHaveLength(1);
    expect(r.stderr).not.toContain('reloaded');
    // Both tokens carried the run to its end.
    for (const t of ['keep-1', 'keep-2']) expect(lastUse(api, t)!).toBeGreaterThan(emptiedAt + 1_000);
  });
  it('the tokens the pull started with, all quarantined by 401s after a rotation replaced them: the pull goes on with the new set, exit 0', async () => {
    const all = ids(200);
    api = await startExampleApi({ auth: { type: 'header', tokens: ['q-a', 'q-b', 'q-c'] }, budgets: { '*': { requests: 10_000, perSeconds: 1 } }, latencyMs: 5 });
    const f = fleetFixture({
      label: 'rot-quar',
      config: { request: { url: `${api.url}/items/{id}` }, auth: { type: 'header', credentialsFile: 'creds.json' }, budget: { requests: 20, perSeconds: 1 }, worker: { concurrency: 8 }, enqueue: { batchSize: 20 } },
      ids: all,
      env: { PULLQ_CREDENTIALS_POLL_MS: '200', PULLQ_LOG_LEVEL: 'info' },
      cleanups,
    });
    const file = path.join(f.dir, 'creds.json');
    writeFileSync(file, JSON.stringify([{ token: 'q-a', name: 'a' }, { token: 'q-b', name: 'b' }]));
    const pull = spawnCli(['pull', 'ids.txt', '--run', 'quar'], { cwd: f.dir, env: f.env });
    let err = '';
    pull.child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const quarantined = (name: string) => new RegExp(`"credential":"${name}"[^\\n]*quarantin|quarantin[^\\n]*"credential":"${name}"`).test(err);
    const store = new RunStore(f.redis, f.queue);
    await waitFor('20 IDs done', async () => ((await store.status('quar'))?.succeeded ?? 0) >= 20);
    // a is revoked and quarantined; b carries the run.
    api.revoke('q-a');
    await waitFor('a quarantined', () => quarantined('a'));
    // The operator rotates a out (c in); once the pull took the new set in, b is revoked too: the set the pull
    // started with is now all quarantined, the set in force (b, c) is not.
    renameOver(file, JSON.stringify([{ token: 'q-b', name: 'b' }, { token: 'q-c', name: 'c' }]));
    await waitFor('the pull reloaded', () => /credentials reloaded/.test(err));
    api.revoke('q-b');
    await waitFor('b quarantined', () => quarantined('b'));
    const r = await pull.done;
    expect(r.stderr).not.toContain('every credential is quarantined');
    expect(r.code).toBe(0);
    expect(expectEveryIdOnce(f.dir, 'quar', all).failed).toEqual([]);
  });
});
