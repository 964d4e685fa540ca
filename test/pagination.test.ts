import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startExampleApi, type ExampleApi } from '../scripts/example-api-server.js';
import { pullInProcess } from './helpers/pull-in-process.js';
import { tempDir, testConfig, uniqueQueue } from './helpers/test-env.js';

// Pagination per ID (issue #13) end to end: a real API, Redis and workers.

const tmp = tempDir('pages');
afterAll(() => tmp.remove());
const servers: ExampleApi[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function setup(request: Record<string, unknown>, extra: Record<string, unknown> = {}, apiOptions: Parameters<typeof startExampleApi>[0] = {}) {
  const auth = (extra['auth'] as { type: string } | undefined) ?? { type: 'header', tokens: ['page-token'] };
  const api = await startExampleApi({ auth: auth.type === 'query' ? { type: 'query', param: 'api_key', tokens: ['page-token'] } : { type: 'header', tokens: ['page-token'] }, ...apiOptions });
  servers.push(api);
  const config = testConfig({
    queue: uniqueQueue('page'),
    auth,
    retry: { attempts: 3, baseDelayMs: 20, maxDelayMs: 100 },
    sink: { type: 'file', dir: tmp.dir },
    enqueue: { batchSize: 3 },
    ...extra,
    request: { timeoutMs: 2000, ...request, url: `${api.url}${request['url'] as string}` },
  });
  return { api, config };
}

type Line = { id: string; page?: number; pages?: number; truncated?: true; data: unknown };
const byId = (lines: Line[]) => Object.fromEntries([...new Set(lines.map((l) => l.id))].sort().map((id) => [id, lines.filter((l) => l.id === id)]));
const items = (id: string, pages: number) => Array.from({ length: pages }, (_, p) => [0, 1].map((i) => ({ user: id, page: p + 1, i }))).flat();

describe('pagination', () => {
  it('link (RFC 8288), output.mode "page": one line per page, absolute and relative next links, same origin', async () => {
    const { api, config } = await setup({ url: '/feed/{id}', pagination: { type: 'link' } }, { output: { mode: 'page' } });
    const out = await pullInProcess(config, ['p1-a', 'b', 'p5-c', 'missing-d'], { run: 'link-page' });
    const lines = byId(out.results as Line[]);
    expect(Object.keys(lines)).toEqual(['b', 'p1-a', 'p5-c']);
    for (const [id, n] of [['p1-a', 1], ['b', 3], ['p5-c', 5]] as const) {
      expect(lines[id]!.map((l) => l.page).sort()).toEqual(Array.from({ length: n }, (_, i) => i + 1));
      for (const l of lines[id]!) expect(l.data).toEqual({ id, page: l.page, items: items(id, n).filter((x) => x.page === l.page) });
      for (let p = 1; p <= n; p++) expect(api.requestsByUrl.get(p === 1 ? `/feed/${id}` : `/feed/${id}?page=${p}`)).toBe(1);
    }
    expect(out.failed.map((f) => [f.id, f.error])).toEqual([['missing-d', 'not_found']]);
    // Counts are per ID, not per page.
    expect(out.summary).toMatchObject({ total: 4, succeeded: 3, failed: 1 });
  });

  it('link, output.mode "id": one line per ID with every page body, in order', async () => {
    const { config } = await setup({ url: '/feed/{id}', pagination: { type: 'link' } });
    const out = await pullInProcess(config, ['p1-a', 'p4-b'], { run: 'link-id' });
    const lines = byId(out.results as Line[]);
    expect(lines['p1-a']).toEqual([expect.objectContaining({ pages: 1, data: [{ id: 'p1-a', page: 1, items: items('p1-a', 1) }] })]);
    const b = lines['p4-b']![0]!;
    expect(b).toMatchObject({ id: 'p4-b', pages: 4, status: 200 });
    expect((b.data as { page: number }[]).map((d) => d.page)).toEqual([1, 2, 3, 4]);
    expect(b.truncated).toBeUndefined();
    expect(b.page).toBeUndefined();
  });

  it('cursor in the JSON body, sent as a query parameter; mode "id" with itemsPath: the items of every page in one array', async () => {
    const { api, config } = await setup({ url: '/stream/{id}?limit=2', pagination: { type: 'cursor', cursorPath: 'next_cursor', param: 'cursor', itemsPath: 'data' } });
    const out = await pullInProcess(config, ['p3-a', 'p1-b', 'x y'], { run: 'cursor-id' });
    const lines = byId(out.results as Line[]);
    expect(lines['p3-a']).toEqual([expect.objectContaining({ pages: 3, data: items('p3-a', 3) })]);
    expect(lines['p1-b']).toEqual([expect.objectContaining({ pages: 1, data: items('p1-b', 1) })]);
    expect(lines['x y']).toEqual([expect.objectContaining({ pages: 3, data: items('x y', 3) })]);
    expect([...api.requestsByUrl.keys()].filter((u) => u.startsWith('/stream/p3-a')).sort()).toEqual(['/stream/p3-a?limit=2', '/stream/p3-a?limit=2&cursor=c2', '/stream/p3-a?limit=2&cursor=c3']);
  });

  it('page numbers from start, stop at an empty itemsPath; maxPages caps the ID (truncated: true); each page retried on its own', async () => {
    const { api, config } = await setup({ url: '/users/{id}/events', pagination: { type: 'page', param: 'page', start: 1, itemsPath: 'items', maxPages: 4 } }, { output: { mode: 'page' } });
    const out = await pullInProcess(config, ['p2-a', 'p9-long', 'flaky-c'], { run: 'pages' });
    const lines = byId(out.results as Line[]);
    // Two pages of items, then the empty page that says there are no more.
    expect(lines['p2-a']!.map((l) => [l.page, (l.data as { items: unknown[] }).items.length])).toEqual([[1, 2], [2, 2], [3, 0]]);
    // Nine pages, capped at four: the last line says so.
    expect(lines['p9-long']!.map((l) => [l.page, l.truncated])).toEqual([[1, undefined], [2, undefined], [3, undefined], [4, true]]);
    expect(api.requestsByUrl.get('/users/p9-long/events?page=5')).toBeUndefined();
    // Every page of flaky-c answered 503 once: the retry policy applies to every page, with attempts of its own.
    expect(lines['flaky-c']!.map((l) => l.page)).toEqual([1, 2, 3, 4]);
    for (let p = 1; p <= 4; p++) expect(api.requestsByUrl.get(`/users/flaky-c/events?page=${p}`)).toBe(2);
    expect(out.summary).toMatchObject({ total: 3, succeeded: 3, failed: 0 });
  });

  it('page numbers, mode "id": truncated, with the items merged', async () => {
    const { config } = await setup({ url: '/users/{id}/events', pagination: { type: 'page', param: 'page', itemsPath: 'items', maxPages: 2 } });
    const out = await pullInProcess(config, ['p5-a', 'p1-b'], { run: 'pages-id' });
    const lines = byId(out.results as Line[]);
    expect(lines['p5-a']).toEqual([expect.objectContaining({ pages: 2, truncated: true, data: items('p5-a', 2) })]);
    expect(lines['p1-b']).toEqual([expect.objectContaining({ pages: 2, data: items('p1-b', 1) })]);
    expect(lines['p1-b']![0]!.truncated).toBeUndefined();
  });

  it.each([
    ['header', { type: 'header', tokens: ['page-token'] }],
    ['query', { type: 'query', param: 'api_key', tokens: ['page-token'] }],
  ])('a next link to another origin is never followed (credential in the %s): the ID fails cross_origin_next', async (where, auth) => {
    const other = await startExampleApi({});
    servers.push(other);
    const { api, config } = await setup({ url: '/feed/{id}', pagination: { type: 'link' } }, { auth, output: { mode: 'page' } }, { redirectTo: other.url });
    const out = await pullInProcess(config, ['cross-1', 'p2-fine'], { run: `cross-${where}` });
    expect(other.totalRequests()).toBe(0);
    expect(out.failed).toEqual([
      expect.objectContaining({ id: 'cross-1', status: 200, error: 'cross_origin_next', attempts: 1, message: `page 1 links its next page to another origin (${other.url}); not followed, the credential is never sent there` }),
    ]);
    // Page 1 itself was fetched (mode "page": it is output), the other ID is untouched.
    expect((out.results as Line[]).map((l) => [l.id, l.page]).sort()).toEqual([['cross-1', 1], ['p2-fine', 1], ['p2-fine', 2]]);
    expect(api.requestsByUrl.get('/feed/cross-1?page=2')).toBeUndefined();
    expect(out.summary).toMatchObject({ total: 2, succeeded: 1, failed: 1, errors: { cross_origin_next: 1 } });
  });

  it.each([
    ['id', []],
    ['page', [['fail2-x', 1]]],
  ])('a failure mid-pagination, mode %j: the failed line names the page; the pages before it are output only in mode "page"', async (mode, pages) => {
    const { config } = await setup({ url: '/users/{id}/events', pagination: { type: 'page', param: 'page', itemsPath: 'items' } }, { output: { mode }, retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 10 } });
    const out = await pullInProcess(config, ['fail2-x'], { run: `fail-mid-${mode}` });
    expect((out.results as Line[]).map((l) => [l.id, l.page])).toEqual(pages);
    expect(out.failed).toEqual([{ id: 'fail2-x', error: 'server_error', status: 500, message: 'page 2: HTTP 500 (gave up after 2 attempts)', attempts: 2 }]);
    expect(out.summary).toMatchObject({ total: 1, succeeded: 0, failed: 1 });
  });
});
