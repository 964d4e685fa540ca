import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { pullInProcess } from './helpers/pull-in-process.js';
import { tempDir, testConfig, uniqueQueue } from './helpers/test-env.js';

// One ID's data fails that ID, never the run: a cursor that cannot be put in a URL, pages that add
// up past what one merged line may hold, and a batch that fails while its other IDs still run.

const tmp = tempDir('page-limits');
afterAll(() => tmp.remove());
const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

interface Seen {
  path: string;
  startedAt: number;
  answeredAt?: number;
}

/**
 * A small API of its own:
 * - GET /c/<id>[?cursor=cN]: cursor pages `{"items", "next"}`, three pages; `bad-cursor`'s first page
 *   has the cursor "\ud800" (valid JSON text, a lone surrogate once parsed).
 * - GET /big/<id>?page=N: `huge` has 20 pages of ~1 KB, anything else 2; then an empty page.
 * - GET /deep/<id>: `deep` answers an array nested 100,000 deep, anything else `{"id"}`.
 * - GET /dp/<id>?page=N: two pages of items and an empty one; `deep-going`'s first page holds the deep array, its last comes after 6 s.
 * - GET /s/<id>: `slow` answers after 3 s, anything else after 300 ms (both are in flight when the first answers).
 */
/** JSON.parse takes it; JSON.stringify of what it parsed to throws RangeError (call stack). */
const DEEP = '['.repeat(100_000) + ']'.repeat(100_000);

async function startApi(): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    const s: Seen = { path: url.pathname + url.search, startedAt: Date.now() };
    seen.push(s);
    const send = (body: string) => {
      s.answeredAt = Date.now();
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
    };
    const [, route, id] = url.pathname.split('/');
    if (route === 'c') {
      const n = Number((url.searchParams.get('cursor') ?? 'c1').slice(1));
      if (id === 'bad-cursor') return send('{"items":[1],"next":"\\ud800"}');
      return send(JSON.stringify({ items: [`${id}-${n}`], next: n < 3 ? `c${n + 1}` : null }));
    }
    if (route === 'big') {
      const n = Number(url.searchParams.get('page'));
      const pages = id === 'huge' ? 20 : 2;
      return send(JSON.stringify({ items: n <= pages ? [{ n, pad: 'x'.repeat(1000) }] : [] }));
    }
    if (route === 'deep') return send(id === 'deep' ? DEEP : JSON.stringify({ id }));
    if (route === 'dp') {
      const n = Number(url.searchParams.get('page'));
      if (id === 'deep-going') {
        // Page 1 is in before the first checkpoint (5 s), page 2 (the empty last one) after it.
        if (n === 1) return send(`{"items":[${DEEP}]}`);
        setTimeout(() => send('{"items":[]}'), 6000);
        return;
      }
      return send(JSON.stringify({ items: n <= 2 ? [`${id}-${n}`] : [] }));
    }
    if (route === 's') {
      setTimeout(() => send(JSON.stringify({ id })), id === 'slow' ? 3000 : 300);
      return;
    }
    res.writeHead(404).end();
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

function configFor(api: { url: string }, request: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return testConfig({
    queue: uniqueQueue('page-limits'),
    auth: { type: 'none' },
    retry: { attempts: 2, baseDelayMs: 20, maxDelayMs: 50 },
    sink: { type: 'file', dir: tmp.dir },
    enqueue: { batchSize: 10 },
    ...extra,
    request: { timeoutMs: 10_000, ...request, url: `${api.url}${request['url'] as string}` },
  });
}

describe('one ID never aborts the run', () => {
  it.each(['id', 'page'])('a cursor with a lone surrogate fails that ID (client_error), mode %j; the others complete', async (mode) => {
    const api = await startApi();
    const config = configFor(api, { url: '/c/{id}', pagination: { type: 'cursor', cursorPath: 'next', param: 'cursor' } }, { output: { mode } });
    const out = await pullInProcess(config, ['good-a', 'bad-cursor', 'good-b'], { run: `bad-cursor-${mode}`, timeoutMs: 20_000 });
    expect(out.failed).toEqual([
      { id: 'bad-cursor', status: 200, error: 'client_error', attempts: 1, message: "page 1's cursor (next) is not well-formed Unicode (it has a lone surrogate): it cannot be put in a URL" },
    ]);
    const ids = out.results.map((l) => l.id).sort();
    // Mode "page": the good IDs' three pages each, and the bad one's first page (fetched before its cursor was read).
    expect(ids).toEqual(mode === 'id' ? ['good-a', 'good-b'] : ['bad-cursor', 'good-a', 'good-a', 'good-a', 'good-b', 'good-b', 'good-b']);
    expect(out.summary).toMatchObject({ total: 3, succeeded: 2, failed: 1, errors: { client_error: 1 } });
    expect(api.seen.filter((s) => s.path.startsWith('/c/bad-cursor')).map((s) => s.path)).toEqual(['/c/bad-cursor']);
  });

  it('output.mode "id": an ID whose pages add up past output.maxMergedBytes fails body_too_large; the others complete', async () => {
    const api = await startApi();
    const config = configFor(api, { url: '/big/{id}', pagination: { type: 'page', param: 'page', itemsPath: 'items' } }, { output: { maxMergedBytes: 8000 } });
    const out = await pullInProcess(config, ['small', 'huge', 'small-2'], { run: 'merged-limit', timeoutMs: 20_000 });
    expect(out.failed).toEqual([
      {
        id: 'huge',
        status: 200,
        error: 'body_too_large',
        attempts: 1,
        message: 'the pages of this ID add up to more than output.maxMergedBytes (8000 bytes) at page 8: raise output.maxMergedBytes, or use output.mode "page" (one line per page)',
      },
    ]);
    expect(out.results.map((l) => [l.id, l.pages]).sort()).toEqual([['small', 3], ['small-2', 3]]);
    // Fetching stopped at the page that went past the limit.
    expect(api.seen.filter((s) => s.path.startsWith('/big/huge')).length).toBe(8);
    expect(out.summary).toMatchObject({ total: 3, succeeded: 2, failed: 1, errors: { body_too_large: 1 } });
  });

  it('a body the sink cannot write (nested too deeply for JSON.stringify) fails that ID body_too_large; the others complete', async () => {
    const api = await startApi();
    const config = configFor(api, { url: '/deep/{id}' });
    const out = await pullInProcess(config, ['ok-1', 'deep', 'ok-2'], { run: 'deep', timeoutMs: 20_000 });
    expect(out.failed).toEqual([expect.objectContaining({ id: 'deep', status: 200, error: 'body_too_large', attempts: 1 })]);
    expect(out.failed[0]!.message).toBe("this ID's data cannot be written as JSON (Maximum call stack size exceeded): it is nested too deeply or too large");
    expect(out.results.map((l) => l.id).sort()).toEqual(['ok-1', 'ok-2']);
    expect(out.summary).toMatchObject({ total: 3, succeeded: 2, failed: 1, errors: { body_too_large: 1 } });
  });

  it.each(['page', 'id'])('a page the sink cannot write, of an ID still going at a checkpoint, fails that ID (mode %j); the others complete', async (mode) => {
    const api = await startApi();
    const config = configFor(api, { url: '/dp/{id}', pagination: { type: 'page', param: 'page', itemsPath: 'items' } }, { output: { mode } });
    const out = await pullInProcess(config, ['ok', 'deep-going'], { run: `deep-going-${mode}`, timeoutMs: 30_000 });
    expect(out.failed).toEqual([expect.objectContaining({ id: 'deep-going', error: 'body_too_large' })]);
    expect(out.results.map((l) => l.id)).toEqual(mode === 'page' ? ['ok', 'ok', 'ok'] : ['ok']);
    expect(out.summary).toMatchObject({ total: 2, succeeded: 1, failed: 1 });
  });

  it('a batch that fails while other IDs of it still run ends only once they have all ended', async () => {
    const api = await startApi();
    const config = configFor(api, { url: '/s/{id}' });
    // A listener that breaks on the first answer (the fast ID's): that ID's processing throws, the slow one is in flight.
    let broke = false;
    const failedAt: number[] = [];
    const out = await pullInProcess(config, ['fast', 'slow'], {
      run: 'settle',
      timeoutMs: 30_000,
      worker: {
        events: {
          request: () => {
            if (broke) return;
            broke = true;
            throw new Error('a listener broke');
          },
          committed: () => undefined,
          rest: () => undefined,
          quarantine: () => undefined,
        },
      },
      onWorker: (w) => w.worker.on('failed', () => failedAt.push(Date.now())),
    });
    expect(broke).toBe(true);
    expect(failedAt.length).toBeGreaterThanOrEqual(1);
    const firstSlow = api.seen.find((s) => s.path === '/s/slow')!;
    // The first attempt's slow request was answered before its batch job failed (so no second attempt ran beside it).
    expect(firstSlow.answeredAt).toBeLessThanOrEqual(failedAt[0]!);
    const slowRequests = api.seen.filter((s) => s.path === '/s/slow');
    for (let i = 1; i < slowRequests.length; i++) expect(slowRequests[i]!.startedAt).toBeGreaterThanOrEqual(slowRequests[i - 1]!.answeredAt!);
    expect(out.summary).toMatchObject({ total: 2, succeeded: 2, failed: 0 });
  });
});
