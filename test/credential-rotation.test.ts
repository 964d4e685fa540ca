import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createPullq } from '../src/api/create-pullq.js';
import { CredentialPool } from '../src/auth/credential-pool.js';
import { watchCredentials } from '../src/auth/watch-credentials.js';
import type { Credential } from '../src/auth/credential.js';
import { loadConfig, type Config } from '../src/config.js';
import type { DashboardState } from '../src/dashboard/dashboard-state.js';
import { createHttpClient } from '../src/jobs/http-client.js';
import { createLogger } from '../src/logger.js';
import pLimit from 'p-limit';
import type { BatchContext } from '../src/jobs/batch-context.js';
import { NO_EVENTS } from '../src/jobs/batch-events.js';
import { takeStart } from '../src/jobs/take-start.js';
import { cleanQueue, newRedis, redisUrl, tempDir, uniqueQueue } from './helpers/test-env.js';

// The pool's set replaced in process (pool.replace) and the file watcher (watch-credentials.ts) against a real
// Redis, with a fast poll; the fleet with real processes is test/rotation.test.ts.

const redis = newRedis();
const tmp = tempDir('cred-rot');
const queues: string[] = [];
const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});
afterAll(async () => {
  for (const q of queues) await cleanQueue(redis, q);
  redis.disconnect();
  tmp.remove();
});

const file = (name: string) => path.join(tmp.dir, name);
const renameOver = (name: string, content: string) => {
  writeFileSync(file(`${name}.tmp`), content);
  renameSync(file(`${name}.tmp`), file(name));
};

/** A config in tmp whose auth reads `creds` (a credentialsFile or, for .txt, a tokensFile). */
function config(creds: string, extra: Record<string, unknown> = {}): Config {
  const queue = uniqueQueue('rot');
  queues.push(queue);
  const key = creds.endsWith('.txt') ? 'tokensFile' : 'credentialsFile';
  writeFileSync(file(`${queue}.json`), JSON.stringify({ queue, request: { url: 'http://127.0.0.1:9/items/{id}' }, auth: { type: 'header', [key]: creds }, ...extra }));
  return loadConfig(file(`${queue}.json`), { redisUrl: redisUrl(), vars: { ROT_VAR: 'from-env' } });
}

async function open(c: Config, o: { watch?: boolean; pollMs?: number } = {}) {
  const lines: string[] = [];
  const pool = await CredentialPool.open({
    redis, config: c, logger: createLogger('info', 'human', { write: (l) => lines.push(l) }), http: createHttpClient(c),
    watch: o.watch, env: { vars: { ROT_VAR: 'from-env' }, credentialsPollMs: o.pollMs ?? 50 },
  });
  closers.push(() => pool.close());
  return { pool, lines };
}

const labels = (p: CredentialPool) => p.credentials.map((c) => c.label);

async function waitFor(what: string, check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

describe('pool.replace', () => {
  it('a removed credential is offered no more, a new one joins with its budget, an unchanged one keeps its object; a duplicate secret is refused', async () => {
    writeFileSync(file('a.json'), JSON.stringify([{ token: 'ra-1', name: 'one' }, { token: 'ra-2', name: 'two' }]));
    const c = config('a.json');
    const { pool } = await open(c);
    const [one, two] = pool.credentials as [Credential, Credential];
    expect(await pool.isResting(one, false)).toBe(false);
    const r = await pool.replace([
      { kind: 'header', secret: 'ra-2', name: 'two', source: 'credentialsFile' },
      { kind: 'header', secret: 'ra-3', name: 'three', budget: { requests: 7, perSeconds: 1, maxInFlight: 2 }, source: 'credentialsFile' },
    ]);
    expect(r).toEqual({ added: 1, removed: 1, changed: 0, size: 2 });
    expect(labels(pool)).toEqual(['two', 'three']);
    expect(pool.credentials[0]).toBe(two);
    // A start of the removed one reserved before the swap is not used: it counts as resting (given back, another taken).
    expect(await pool.isResting(one, false)).toBe(true);
    expect(await pool.isResting(two, false)).toBe(false);
    const granted = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const got = await pool.acquire(new Set(), 60_000);
      if (got.kind === 'granted') {
        granted.add(got.credential.label);
        await pool.release(got.credential, got.start, got.paceUs);
        await pool.endRequest(got.credential, got.lease);
      }
    }
    expect([...granted].sort()).toEqual(['three', 'two']);
    const health = await pool.health();
    expect(health.map((h) => [h.label, h.budget])).toEqual([['two', 'not yet known'], ['three', '7/1s, ≤ 2 in flight']]);
    // A request of a removed credential may still be in flight: its secret is still scrubbed.
    expect(pool.secrets()).toContain('ra-1');
    // A name change is a change: a new object, counted as changed.
    expect(await pool.replace([{ kind: 'header', secret: 'ra-2', name: 'two-renamed', source: 'credentialsFile' }, { kind: 'header', secret: 'ra-3', name: 'three', budget: { requests: 7, perSeconds: 1, maxInFlight: 2 }, source: 'credentialsFile' }])).toEqual({ added: 0, removed: 0, changed: 1, size: 2 });
    expect(labels(pool)).toEqual(['two-renamed', 'three']);
    await expect(pool.replace([{ kind: 'header', secret: 'ra-9' }, { kind: 'header', secret: 'ra-9', name: 'again' }])).rejects.toThrow('two credentials have the same secret');
    expect(labels(pool)).toEqual(['two-renamed', 'three']);
  });
  it('a credential removed while its apply() waits (a slow login or token) sends nothing: the start is given back', async () => {
    writeFileSync(file('slow.json'), JSON.stringify([{ token: 'sl-1', name: 'slow' }]));
    const c = config('slow.json');
    const { pool } = await open(c);
    const [slow] = pool.credentials as [Credential];
    const applied: string[] = [];
    // Its apply waits until the pool's set was replaced (the rotation lands during the token fetch).
    const apply = slow.apply.bind(slow);
    (slow as { apply: Credential['apply'] }).apply = async (request) => {
      await pool.replace([{ kind: 'header', secret: 'sl-2', name: 'fresh', source: 'credentialsFile' }]);
      applied.push(slow.label);
      return apply(request);
    };
    const ctx = { config: c, pool, http: createHttpClient(c), limit: pLimit(1), stopping: () => false, logger: createLogger('silent', 'human'), events: NO_EVENTS } as unknown as BatchContext;
    const step = await takeStart(ctx, { url: 'http://127.0.0.1:9/items/x', headers: {} }, { attempts: 0, limited: 0, refusedBy: [], blipped: [] } as never, 0);
    expect(applied).toEqual(['slow']);
    expect(step.kind).toBe('resting');
  });
});

describe('watching the credentials file', () => {
  it('rename over, rewrite in place, bad files refused with one warning each (never quoting them), the set kept; ${VAR} from the environment', async () => {
    writeFileSync(file('w.json'), JSON.stringify([{ token: 'w-1', name: 'w1' }]));
    const { pool, lines } = await open(config('w.json'), { watch: true });
    await sleep(150);
    // The first read finds the set it started with: nothing said.
    expect(lines).toEqual([]);
    renameOver('w.json', JSON.stringify([{ token: 'w-1', name: 'w1' }, { token: 'w-${ROT_VAR}', name: 'w2' }]));
    await waitFor('the reload', () => pool.size === 2);
    expect(lines).toEqual([`pullq: info: credentials reloaded from ${file('w.json')}: 2 in force (+1, -0)\n`]);
    expect(pool.secrets()).toContain('w-from-env');
    lines.length = 0;
    for (const [content, why] of [
      ['[{"token": "w-SECRET-in-bad-json"', 'not valid JSON (give a JSON array of tokens)'],
      ['[]', 'lists no tokens'],
      [JSON.stringify([{ token: 'w-SECRET-dup' }, { token: 'w-SECRET-dup', name: 'x' }]), 'two credentials have the same secret (x)'],
      [JSON.stringify([{ token: 'w-SECRET-x', budget: { requests: 0, perSeconds: 1 } }]), '0.budget.requests: must be > 0'],
    ]) {
      writeFileSync(file('w.json'), content!);
      await waitFor(`the refusal of ${why}`, () => lines.length === 1);
      // Polled again and again: said once.
      await sleep(200);
      expect(lines).toEqual([`pullq: warning: credentials file ${file('w.json')} refused (${why}); keeping the 2 in force\n`]);
      expect(labels(pool)).toEqual(['w1', 'w2']);
      lines.length = 0;
    }
    rmSync(file('w.json'));
    await waitFor('the refusal of a missing file', () => lines.length === 1);
    expect(lines[0]).toBe(`pullq: warning: credentials file ${file('w.json')} refused (cannot read it: ENOENT); keeping the 2 in force\n`);
    lines.length = 0;
    // Rewritten in place, back to one credential.
    writeFileSync(file('w.json'), JSON.stringify([{ token: 'w-${ROT_VAR}', name: 'w2' }]));
    await waitFor('the reload', () => pool.size === 1);
    expect(lines).toEqual([`pullq: info: credentials reloaded from ${file('w.json')}: 1 in force (+0, -1)\n`]);
    pool.close();
    writeFileSync(file('w.json'), JSON.stringify(['w-after-close']));
    await sleep(200);
    expect(labels(pool)).toEqual(['w2']);
  });

  it('SIGHUP re-reads at once (the poll an hour away); without a watch nothing changes; a reader (reread) sees the file as it is', async () => {
    writeFileSync(file('h.txt'), 'h-1\n');
    const c = config('h.txt');
    const watched = await open(c, { watch: true, pollMs: 3_600_000 });
    const fixed = await open(c);
    await sleep(50);
    writeFileSync(file('h.txt'), 'h-2\nh-3\n');
    await sleep(100);
    expect(watched.pool.size).toBe(1);
    process.emit('SIGHUP', 'SIGHUP');
    await waitFor('the reload', () => watched.pool.size === 2);
    expect(watched.lines).toEqual([`pullq: info: credentials reloaded from ${file('h.txt')}: 2 in force (+2, -1)\n`]);
    expect(watched.pool.credentials.map((x) => x.source)).toEqual(['tokensFile', 'tokensFile']);
    // SIGHUP on an unchanged file says so.
    process.emit('SIGHUP', 'SIGHUP');
    await waitFor('the line', () => watched.lines.length === 2);
    expect(watched.lines[1]).toBe(`pullq: info: credentials file ${file('h.txt')} re-read: unchanged, 2 in force\n`);
    expect(fixed.pool.size).toBe(1);
    const reader = await CredentialPool.open({ redis, config: c, logger: createLogger('silent'), http: createHttpClient(c), reread: true });
    expect(reader.size).toBe(2);
    // A bad file now: the reader shows the config's set (it cannot know better) and says nothing.
    for (const bad of ['\n', 'h-5\nh-5\n']) {
      writeFileSync(file('h.txt'), bad);
      expect((await CredentialPool.open({ redis, config: c, logger: createLogger('silent'), http: createHttpClient(c), reread: true })).size).toBe(1);
    }
  });

  it('a set that cannot be taken in for another reason than the file (Redis away) is tried again at the next poll, said once', async () => {
    writeFileSync(file('t.txt'), 't-1\n');
    const lines: string[] = [];
    let fails = 3;
    let size = 1;
    const target = {
      get size() {
        return size;
      },
      async replace(list: readonly unknown[]) {
        if (list.length > 1 && fails-- > 0) throw Object.assign(new Error('connect ECONNREFUSED t-SECRET-2'), { code: 'ECONNREFUSED' });
        const r = { added: list.length - size, removed: 0, changed: 0, size: list.length };
        size = list.length;
        return r;
      },
    };
    const w = watchCredentials({ file: file('t.txt'), read: () => readFileSync(file('t.txt'), 'utf8').trim().split('\n').map((secret) => ({ kind: 'header' as const, secret })), target, logger: createLogger('info', 'human', { write: (l) => lines.push(l) }), pollMs: 30, sighup: false });
    closers.push(() => w.close());
    writeFileSync(file('t.txt'), 't-1\nt-SECRET-2\n');
    await waitFor('the reload', () => size === 2);
    expect(lines).toEqual([
      `pullq: warning: credentials file ${file('t.txt')}: could not take the new set in yet (ECONNREFUSED); keeping the 1 in force, trying at the next check\n`,
      `pullq: info: credentials reloaded from ${file('t.txt')}: 2 in force (+1, -0)\n`,
    ]);
  });

  it('the dashboard shows the set in force', async () => {
    writeFileSync(file('d.json'), JSON.stringify([{ token: 'd-1', name: 'dash-one' }]));
    const c = config('d.json');
    const pullq = createPullq(c, { logger: createLogger('silent') });
    closers.push(() => pullq.close());
    const dash = await pullq.dashboard({ port: 0 });
    const state = async () => (await (await fetch(`${dash.url}/api/state`)).json()) as DashboardState;
    expect((await state()).credentials.map((x) => x.label)).toEqual(['dash-one']);
    renameOver('d.json', JSON.stringify([{ token: 'd-2', name: 'dash-two' }]));
    // Polled every 2 s (PULLQ_CREDENTIALS_POLL_MS is not set here); the page's reads are reused for 1 s.
    const until = Date.now() + 6_000;
    let seen: string[] = [];
    while (Date.now() < until) {
      seen = (await state()).credentials.map((x) => x.label);
      if (seen[0] === 'dash-two') break;
      await sleep(100);
    }
    expect(seen).toEqual(['dash-two']);
  });
});
