import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startExampleApi, type ExampleApi, type ExampleApiOptions } from '../scripts/example-api-server.js';
import { RunStore } from '../src/runs/run-store.js';
import { pullInProcess } from './helpers/pull-in-process.js';
import { newRedis, tempDir, testConfig, uniqueQueue } from './helpers/test-env.js';

const tmp = tempDir('pipeline');
afterAll(() => tmp.remove());
let api: ExampleApi | undefined;
afterEach(async () => {
  await api?.close();
  api = undefined;
});

async function setup(apiOptions: ExampleApiOptions, config: Record<string, unknown> = {}, urlPath = '/items/{id}') {
  api = await startExampleApi(apiOptions);
  return testConfig({
    queue: uniqueQueue('pipe'),
    request: { url: `${api.url}${urlPath}`, timeoutMs: 2000 },
    retry: { attempts: 4, baseDelayMs: 50, maxDelayMs: 500 },
    sink: { type: 'file', dir: tmp.dir },
    enqueue: { batchSize: 7 },
    ...config,
  });
}

// ('#f' cannot be in an IDs file: a line starting with # is a comment.)
const AWKWARD = ['12345', 'a:b', 'x y', 'ü', 'a/b', '%2e%2e', 'a/../b', '?x=1', 'f#', 'a&b=c', '😀', 'q"uote'];

describe('pull pipeline against a real API and Redis', () => {
  it('fetches awkward IDs into one path segment each, once, with correct data', async () => {
    const config = await setup({ auth: { type: 'header', tokens: ['tok-a', 'tok-b'] } }, { auth: { type: 'header', tokens: ['tok-a', 'tok-b'] } });
    const out = await pullInProcess(config, AWKWARD, { run: 'awkward' });
    expect(out.failed).toEqual([]);
    expect(out.results.map((r) => r.id).sort()).toEqual([...AWKWARD].sort());
    for (const r of out.results) expect(r.data).toMatchObject({ id: r.id, name: `item ${r.id}` });
    for (const id of AWKWARD) expect(api!.requestsById.get(id)).toBe(1);
    // Both tokens were used: round-robin.
    expect(api!.requestsByCredential.get('tok-a')).toBeGreaterThan(0);
    expect(api!.requestsByCredential.get('tok-b')).toBeGreaterThan(0);
    expect(out.summary).toMatchObject({ run: 'awkward', total: AWKWARD.length, succeeded: AWKWARD.length, failed: 0 });
  });

  it('places IDs in a query value too', async () => {
    const config = await setup({}, {}, '/items?id={id}');
    const out = await pullInProcess(config, ['a&b', '..', 'x y'], { run: 'query' });
    expect(out.results.map((r) => (r.data as { id: string }).id).sort()).toEqual(['..', 'a&b', 'x y']);
  });

  it('fetches a duplicated ID once; records invalid IDs; counts them in total', async () => {
    const config = await setup({});
    const ids = ['1', '2', '1', ' 2 ', '.', '..', 'bad\u0001id', '3', '3', '3'];
    const out = await pullInProcess(config, ids, { run: 'dedupe' });
    expect(out.results.map((r) => r.id).sort()).toEqual(['1', '2', '3']);
    expect(out.failed.map((f) => [f.id, f.error, f.status])).toEqual(expect.arrayContaining([['.', 'invalid_id', null], ['..', 'invalid_id', null], ['bad\u0001id', 'invalid_id', null]]));
    expect(out.summary).toMatchObject({ total: 6, succeeded: 3, failed: 3 });
    // Recorded by the producer, naming the line.
    expect(out.failed.find((f) => f.id === '.')!.message).toBe('line 5: ID is a dot-segment (. or ..) and would change the path');
    expect(out.failed.find((f) => f.id === 'bad\u0001id')!.message).toBe('line 7: ID contains a control character');
    expect(api!.requestsById.get('1')).toBe(1);
    expect(api!.requestsById.has('.')).toBe(false);
  });

  it('ends 404/410 without a retry, retries 5xx, resets and 429, fails bad JSON, keeps text', async () => {
    const config = await setup({});
    const ids = ['missing-1', 'gone-1', 'flaky-1', 'reset-1', 'limited-1', 'badjson-1', 'text-1', 'forbidden-1'];
    const out = await pullInProcess(config, ids, { run: 'faults' });
    const failed = Object.fromEntries(out.failed.map((f) => [f.id, f]));
    expect(failed['missing-1']).toMatchObject({ status: 404, error: 'not_found', attempts: 1 });
    expect(failed['gone-1']).toMatchObject({ status: 410, error: 'not_found' });
    expect(failed['badjson-1']).toMatchObject({ status: 200, error: 'invalid_json' });
    expect(failed['forbidden-1']).toMatchObject({ status: 403, error: 'forbidden' });
    expect(api!.requestsById.get('missing-1')).toBe(1);
    const ok = Object.fromEntries(out.results.map((r) => [r.id, r]));
    expect(ok['flaky-1']).toMatchObject({ status: 200 });
    expect(api!.requestsById.get('flaky-1')).toBe(3);
    expect(ok['reset-1']).toMatchObject({ status: 200 });
    expect(ok['limited-1']).toMatchObject({ status: 200 });
    expect(ok['text-1']!.data).toBe('plain text for text-1');
    expect(out.summary.errors).toEqual({ not_found: 2, invalid_json: 1, forbidden: 1 });
  });

  it('gives up after retry.attempts with the last error', async () => {
    const config = await setup({}, { retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 20 } });
    const out = await pullInProcess(config, ['flaky-x'], { run: 'giveup' });
    expect(out.failed).toEqual([expect.objectContaining({ id: 'flaky-x', status: 503, error: 'server_error', attempts: 2 })]);
  });

  it('fails a body over maxBodyBytes as body_too_large without buffering it', async () => {
    const config = await setup({ bigBytes: 50 * 1024 * 1024 }, { request: { url: 'http://placeholder/{id}', maxBodyBytes: 100_000 } });
    config.request.url = `${api!.url}/items/{id}`;
    const out = await pullInProcess(config, ['big-1', 'ok-1'], { run: 'big' });
    expect(out.failed).toEqual([expect.objectContaining({ id: 'big-1', error: 'body_too_large' })]);
    expect(out.results.map((r) => r.id)).toEqual(['ok-1']);
  });

  it('times out a slow answer and retries it', async () => {
    const config = await setup({ slowMs: 1500 }, { request: { url: 'http://placeholder/{id}', timeoutMs: 300 }, retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 20 } });
    config.request.url = `${api!.url}/items/{id}`;
    const out = await pullInProcess(config, ['slow-1'], { run: 'slow' });
    expect(out.failed).toEqual([expect.objectContaining({ id: 'slow-1', status: null, error: 'timeout', attempts: 2 })]);
  });

  it('an empty IDs file completes at once with empty output', async () => {
    const config = await setup({});
    const out = await pullInProcess(config, [], { run: 'empty', idsText: '# nothing\n\n' });
    expect(out.summary).toMatchObject({ total: 0, succeeded: 0, failed: 0 });
    expect(out.results).toEqual([]);
  });
});

describe('static credential kinds against the API', () => {
  const cases: [string, ExampleApiOptions['auth'], Record<string, unknown>][] = [
    ['Bearer header', { type: 'header', tokens: ['T1'] }, { type: 'header', tokens: ['T1'] }],
    ['"token" scheme', { type: 'header', scheme: 'token', tokens: ['T1'] }, { type: 'header', scheme: 'token', tokens: ['T1'] }],
    ['access_token scheme', { type: 'header', scheme: 'access_token', tokens: ['T1'] }, { type: 'header', scheme: 'access_token', tokens: ['T1'] }],
    ['raw X-API-Key', { type: 'header', header: 'X-API-Key', scheme: '', tokens: ['T1'] }, { type: 'header', header: 'X-API-Key', scheme: '', tokens: ['T1'] }],
    ['query api_key', { type: 'query', param: 'api_key', tokens: ['T 1&'] }, { type: 'query', param: 'api_key', tokens: ['T 1&'] }],
    ['basic', { type: 'basic', users: { ann: 'pw:ä' } }, { type: 'basic', credentials: [{ username: 'ann', password: 'pw:ä' }] }],
  ];
  it.each(cases)('%s', async (_, apiAuth, auth) => {
    const config = await setup({ auth: apiAuth }, { auth });
    // A run name of its own: the cases share one sink dir, and a finished run's name is not written again.
    const out = await pullInProcess(config, ['a', 'b/c'], { run: `auth-${config.queue}` });
    expect(out.failed).toEqual([]);
    expect(out.results).toHaveLength(2);
  });

  it('a wrong token among good ones is quarantined; every ID is fetched with the good one; no secret in the output', async () => {
    const config = await setup({ auth: { type: 'header', tokens: ['good-token'] } }, { auth: { type: 'header', tokens: ['wrong-token', 'good-token'] } });
    const out = await pullInProcess(config, ['a', 'b', 'c', 'd'], { run: 'unauth' });
    expect(out.failed).toEqual([]);
    expect(out.results).toHaveLength(4);
    expect(JSON.stringify(out)).not.toContain('wrong-token');
    expect(JSON.stringify(out)).not.toContain('good-token');
  });

  it('a 403 without rate-limit signals is tried once with each credential, then fails as forbidden', async () => {
    const tokens = ['f-1', 'f-2', 'f-3'];
    const config = await setup({ auth: { type: 'header', tokens } }, { auth: { type: 'header', tokens } });
    const out = await pullInProcess(config, ['forbidden-x', 'ok-1'], { run: 'forbid' });
    expect(out.failed).toEqual([expect.objectContaining({ id: 'forbidden-x', status: 403, error: 'forbidden' })]);
    expect(out.failed[0]!.message).toContain('refused by every credential');
    expect(api!.requestsById.get('forbidden-x')).toBe(3);
    expect(out.results.map((r) => r.id)).toEqual(['ok-1']);
  });

  it('a long batch commits what it has finished every few seconds (progress shows, a crash redoes little)', async () => {
    const config = await setup({ slowMs: 7000 }, { request: { url: 'http://placeholder/{id}', timeoutMs: 10_000 }, enqueue: { batchSize: 20 } });
    config.request.url = `${api!.url}/items/{id}`;
    const watcher = newRedis();
    const store = new RunStore(watcher, config.queue);
    const seen: number[] = [];
    const poll = setInterval(() => void store.status('checkpoint').then((st) => st && seen.push(st.succeeded)), 200);
    const out = await pullInProcess(config, ['slow-1', ...Array.from({ length: 9 }, (_, i) => `quick-${i}`)], { run: 'checkpoint', timeoutMs: 20_000 });
    clearInterval(poll);
    watcher.disconnect();
    expect(out.results).toHaveLength(10);
    // Before the slow ID answered, the 9 quick ones were already committed.
    expect(seen).toContain(9);
  });
});
