import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { NormalizedOptions } from 'got';
import { startExampleApi, type ExampleApi, type ExampleApiOptions } from '../scripts/example-api-server.js';
import { createCredential } from '../src/auth/kinds/static-credential.js';
import { stripCredentialOffOrigin } from '../src/jobs/strip-credential-off-origin.js';
import { pullInProcess } from './helpers/pull-in-process.js';
import { tempDir, testConfig, uniqueQueue } from './helpers/test-env.js';

// Issue #4: every way the API can misbehave ends as the SPEC says.

const tmp = tempDir('faults');
afterAll(() => tmp.remove());
const servers: ExampleApi[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function api(options: ExampleApiOptions): Promise<ExampleApi> {
  const a = await startExampleApi(options);
  servers.push(a);
  return a;
}

function config(url: string, extra: Record<string, unknown> = {}) {
  return testConfig({
    queue: uniqueQueue('faults'),
    request: { url: `${url}/items/{id}`, timeoutMs: 400 },
    retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 50 },
    sink: { type: 'file', dir: tmp.dir },
    ...extra,
  });
}

describe('API faults', () => {
  it('slow body past the timeout → timeout; truncated body → network; each after its retries', async () => {
    const a = await api({ slowMs: 1500 });
    const out = await pullInProcess(config(a.url), ['slowbody-1', 'truncated-1', 'fine-1'], { run: 'slowtrunc' });
    const byId = Object.fromEntries(out.failed.map((f) => [f.id, f]));
    expect(byId['slowbody-1']).toMatchObject({ error: 'timeout', status: null, attempts: 2 });
    expect(byId['truncated-1']).toMatchObject({ error: 'network', status: null, attempts: 2 });
    expect(a.requestsById.get('truncated-1')).toBe(2);
    expect(out.results.map((r) => r.id)).toEqual(['fine-1']);
  });

  it('a body far over maxBodyBytes is aborted while downloading: memory stays flat', async () => {
    const a = await api({ bigBytes: 300 * 1024 * 1024 });
    const before = process.memoryUsage().rss;
    const out = await pullInProcess(config(a.url, { request: { url: `${a.url}/items/{id}`, maxBodyBytes: 1_000_000, timeoutMs: 10_000 } }), ['big-1', 'big-2'], { run: 'bigbody' });
    const grown = process.memoryUsage().rss - before;
    expect(out.failed.map((f) => [f.id, f.error])).toEqual([['big-1', 'body_too_large'], ['big-2', 'body_too_large']]);
    expect(grown).toBeLessThan(100 * 1024 * 1024);
  });

  it('redirects: same origin followed with the credential; a loop ends as client_error', async () => {
    const a = await api({ auth: { type: 'header', tokens: ['tok-r'] } });
    const out = await pullInProcess(config(a.url, { auth: { type: 'header', tokens: ['tok-r'] } }), ['redirect-same-1', 'redirect-loop-1'], { run: 'redirects' });
    expect(out.results).toEqual([expect.objectContaining({ id: 'redirect-same-1', status: 200, data: expect.objectContaining({ id: 'landed-redirect-same-1' }) })]);
    expect(out.failed).toEqual([expect.objectContaining({ id: 'redirect-loop-1', error: 'client_error', message: 'too many redirects' })]);
  });

  const kinds: [string, ExampleApiOptions['auth'], Record<string, unknown>, (h: Record<string, unknown>, url: string) => boolean][] = [
    ['Authorization: Bearer', { type: 'header', tokens: ['sekrit-bearer'] }, { type: 'header', tokens: ['sekrit-bearer'] }, (h) => h['authorization'] === undefined],
    ['X-API-Key (custom header)', { type: 'header', header: 'X-API-Key', scheme: '', tokens: ['sekrit-key'] }, { type: 'header', header: 'X-API-Key', scheme: '', tokens: ['sekrit-key'] }, (h) => h['x-api-key'] === undefined],
    ['api_key in the query', { type: 'query', param: 'api_key', tokens: ['sekrit-query'] }, { type: 'query', param: 'api_key', tokens: ['sekrit-query'] }, (_, url) => !url.includes('api_key') && !url.includes('sekrit')],
    ['HTTP Basic', { type: 'basic', users: { ann: 'sekrit-pass' } }, { type: 'basic', credentials: [{ username: 'ann', password: 'sekrit-pass' }] }, (h) => h['authorization'] === undefined],
  ];
  it.each(kinds)('a redirect to another origin carries no credential: %s', async (kind, apiAuth, auth, clean) => {
    const other = await api({});
    const a = await api({ auth: apiAuth, redirectTo: other.url });
    // Each kind its own run: a finished run's name is not written to twice. The other server is on
    // loopback too: another origin at a non-public address, followed only when allowed.
    const redirects = { allowPrivate: true };
    const out = await pullInProcess(config(a.url, { auth, request: { url: `${a.url}/items/{id}`, timeoutMs: 400, redirects } }), ['redirect-other-1'], { run: `cross-${kinds.findIndex((k) => k[0] === kind)}` });
    expect(out.results).toEqual([expect.objectContaining({ id: 'redirect-other-1', status: 200 })]);
    expect(other.log).toHaveLength(1);
    const seen = other.log[0]!;
    expect(clean(seen.headers as Record<string, unknown>, seen.url)).toBe(true);
    expect(JSON.stringify(seen)).not.toContain('sekrit');
  });

  it('https → http of the same host counts as another origin', () => {
    const c = createCredential({ kind: 'header', secret: 's' }, { type: 'header', header: 'X-Token', scheme: '' }, Buffer.alloc(32));
    const options = { url: new URL('http://api.example.com/items/1'), headers: { 'x-token': 's', accept: 'x' } } as unknown as NormalizedOptions;
    stripCredentialOffOrigin(options, 'https://api.example.com', c);
    expect(options.headers).toEqual({ accept: 'x' });
    const same = { url: new URL('https://api.example.com/other'), headers: { 'x-token': 's' } } as unknown as NormalizedOptions;
    stripCredentialOffOrigin(same, 'https://api.example.com', c);
    expect(same.headers).toEqual({ 'x-token': 's' });
  });
});
