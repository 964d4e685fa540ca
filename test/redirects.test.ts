import http, { type IncomingHttpHeaders, type Server } from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeTestCerts } from '../scripts/test-certs.js';
import { startExampleApi, type ExampleApi, type ExampleApiOptions } from '../scripts/example-api-server.js';
import { createHttpClient } from '../src/jobs/http-client.js';
import { fetchId, type FetchResult } from '../src/jobs/fetch-id.js';
import { decide, type IdDecision } from '../src/policy/decide.js';
import { pullInProcess } from './helpers/pull-in-process.js';
import { tempDir, testConfig, uniqueQueue } from './helpers/test-env.js';

// Redirects to another origin at a non-public address, and https → http, are refused unless
// request.redirects allows them; a POST's method and body on a redirect follow RFC 9110 §15.4.

const tmp = tempDir('redirects');
afterAll(() => tmp.remove());
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((c) => c()));
});

async function api(options: ExampleApiOptions): Promise<ExampleApi> {
  const a = await startExampleApi(options);
  closers.push(() => a.close());
  return a;
}

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * A bare server on 127.0.0.1 that logs every request: `/r/<status>?to=<url>` answers that status
 * with `Location: <url>`; anything else answers 200 with JSON naming the path.
 */
async function recorder(tls?: { cert: string; key: string }): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const u = new URL(req.url ?? '/', 'http://x');
      const m = /^\/r\/(\d{3})$/.exec(u.pathname);
      if (m) {
        res.writeHead(Number(m[1]), { location: u.searchParams.get('to') ?? '/', 'content-length': '0' });
        return void res.end();
      }
      const text = JSON.stringify({ path: u.pathname, secret: 'internal-state' });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    });
  };
  const server: Server = tls ? https.createServer({ cert: readFileSync(tls.cert), key: readFileSync(tls.key) }, handler) : http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
  const { port } = server.address() as AddressInfo;
  return { url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`, seen };
}

function config(url: string, extra: Record<string, unknown> = {}) {
  return testConfig({
    queue: uniqueQueue('redir'),
    request: { url: `${url}/items/{id}`, timeoutMs: 2000 },
    retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 50 },
    sink: { type: 'file', dir: tmp.dir },
    ...extra,
  });
}

/** What the policy makes of one fetch's result for a fresh ID. */
function outcome(res: FetchResult): IdDecision {
  const retry = { attempts: 2, baseDelayMs: 10, maxDelayMs: 50, maxWaitMs: 1000 };
  return decide(res, { attempts: 0, limited: 0, refusedBy: [], blipped: [] }, { id: 'c' }, { retry }, Date.now()).id;
}

describe('redirects to another origin at a non-public address', () => {
  it('refused by default: the ID fails redirect_refused naming the origin and the switch; the other server sees nothing', async () => {
    const other = await api({});
    const a = await api({ auth: { type: 'header', tokens: ['tok-r'] }, redirectTo: other.url });
    const out = await pullInProcess(config(a.url, { auth: { type: 'header', tokens: ['tok-r'] } }), ['redirect-other-1', 'redirect-same-1'], { run: 'refused' });
    expect(other.totalRequests()).toBe(0);
    expect(out.results).toEqual([expect.objectContaining({ id: 'redirect-same-1', status: 200 })]);
    expect(out.failed).toEqual([{
      id: 'redirect-other-1',
      status: 302,
      error: 'redirect_refused',
      message: `redirect to ${other.url} refused: another origin at a non-public address (127.0.0.1); set request.redirects.allowPrivate: true to follow it`,
      attempts: 1,
    }]);
    expect(out.summary).toMatchObject({ total: 2, succeeded: 1, failed: 1, errors: { redirect_refused: 1 } });
  });

  it('followed with request.redirects.allowPrivate: true (still without the credential)', async () => {
    const other = await api({});
    const a = await api({ auth: { type: 'header', tokens: ['tok-r'] }, redirectTo: other.url });
    const cfg = config(a.url, { auth: { type: 'header', tokens: ['tok-r'] } });
    const out = await pullInProcess({ ...cfg, request: { ...cfg.request, redirects: { ...cfg.request.redirects, allowPrivate: true } } }, ['redirect-other-1'], { run: 'allowed' });
    expect(out.results).toEqual([expect.objectContaining({ id: 'redirect-other-1', status: 200, data: expect.objectContaining({ id: 'landed-redirect-other-1' }) })]);
    expect(other.log).toHaveLength(1);
    expect(other.log[0]!.headers['authorization']).toBeUndefined();
  });

  it('a hostname is judged by what it resolves to: localhost (another origin than 127.0.0.1) is refused', async () => {
    const other = await api({});
    const port = new URL(other.url).port;
    const a = await api({ redirectTo: `http://localhost:${port}` });
    const out = await pullInProcess(config(a.url), ['redirect-other-2'], { run: 'localhost' });
    expect(other.totalRequests()).toBe(0);
    expect(out.results).toEqual([]);
    expect(out.failed).toEqual([expect.objectContaining({ id: 'redirect-other-2', error: 'redirect_refused' })]);
    expect(out.failed[0]!.message).toMatch(new RegExp(`^redirect to http://localhost:${port} refused: another origin at a non-public address \\((127\\.0\\.0\\.1|::1)\\)`));
  });

  it('a redirect to the same origin keeps working, also when that origin is a hostname for loopback', async () => {
    const a = await recorder();
    const local = a.url.replace('127.0.0.1', 'localhost');
    const client = createHttpClient(config(local));
    const res = await fetchId(client, { url: `${local}/r/302?to=/landed`, headers: {}, maxBodyBytes: 1e6 });
    expect(res.status).toBe(200);
    expect(a.seen.map((s) => s.url)).toEqual(['/r/302?to=/landed', '/landed']);
  });

  it('a hostname that passes the check but resolves to loopback when connecting (DNS rebinding) is refused at connect', async () => {
    const other = await recorder();
    const a = await recorder();
    const port = new URL(other.url).port;
    let calls = 0;
    // First answer public, every later one loopback: the connection must be refused.
    const rebinding = ((host: string, options: { all?: boolean }, cb: (...args: unknown[]) => void) => {
      calls += 1;
      const address = host === 'rebind.test' && calls === 1 ? '93.184.215.14' : '127.0.0.1';
      if (options.all) cb(null, [{ address, family: 4 }]);
      else cb(null, address, 4);
    }) as unknown as typeof import('node:dns').lookup;
    const client = createHttpClient(config(a.url)).extend({ dnsLookup: rebinding });
    const res = await fetchId(client, { url: `${a.url}/r/302?to=${encodeURIComponent(`http://rebind.test:${port}/x`)}`, headers: {}, maxBodyBytes: 1e6 });
    expect(outcome(res)).toMatchObject({ action: 'fail', error: 'redirect_refused' });
    expect(other.seen).toEqual([]);
    expect(calls).toBeGreaterThanOrEqual(2);
  });
});

describe('https → http on a redirect', () => {
  let certs: Awaited<ReturnType<typeof makeTestCerts>>;
  beforeAll(async () => {
    certs = await makeTestCerts(tmp.dir);
  });

  it.each([
    ['refused by default (even with allowPrivate)', { allowPrivate: true }, 'refused'],
    ['followed with allowDowngrade: true', { allowPrivate: true, allowDowngrade: true }, 'followed'],
  ] as const)('%s', async (_, redirects, expected) => {
    const plain = await recorder();
    const secure = await recorder(certs);
    const cfg = config(secure.url);
    const client = createHttpClient({ ...cfg, request: { ...cfg.request, redirects: { ...cfg.request.redirects, ...redirects } } }).extend({ https: { certificateAuthority: readFileSync(certs.ca) } });
    const res = await fetchId(client, { url: `${secure.url}/r/301?to=${encodeURIComponent(`${plain.url}/landed?k=v`)}`, headers: {}, maxBodyBytes: 1e6 });
    if (expected === 'refused') {
      expect(plain.seen).toEqual([]);
      expect(outcome(res)).toEqual({
        action: 'fail',
        error: 'redirect_refused',
        message: `redirect from ${secure.url} to ${plain.url} refused: it leaves HTTPS; set request.redirects.allowDowngrade: true to follow it`,
        attempts: 1,
      });
      expect(res.status).toBe(301);
    } else {
      expect(res.status).toBe(200);
      expect(plain.seen.map((s) => s.url)).toEqual(['/landed?k=v']);
    }
  });
});

describe('a POST on a redirect (RFC 9110 §15.4)', () => {
  it.each([
    [301, 'GET', ''],
    [302, 'GET', ''],
    [303, 'GET', ''],
    [307, 'POST', '{"q":"x-1"}'],
    [308, 'POST', '{"q":"x-1"}'],
  ] as const)('%i → %s, body %j', async (status, method, body) => {
    const a = await recorder();
    const client = createHttpClient(testConfig({ queue: uniqueQueue('redir'), request: { url: `${a.url}/items`, method: 'POST', body: { q: '{id}' } }, sink: { type: 'file', dir: tmp.dir } }));
    // fetchId sends the request as given (outgoingRequest puts the body's content type on).
    const res = await fetchId(client, { url: `${a.url}/r/${status}?to=/landed`, headers: { 'content-type': 'application/json' }, body: '{"q":"x-1"}', maxBodyBytes: 1e6 });
    expect(res.status).toBe(200);
    const landed = a.seen[1]!;
    expect([landed.url, landed.method, landed.body]).toEqual(['/landed', method, body]);
    if (method === 'GET') {
      // A GET carries no content, so none of its headers either.
      expect(landed.headers['content-type']).toBeUndefined();
      expect(landed.headers['content-length']).toBeUndefined();
    } else {
      expect(landed.headers['content-type']).toBe('application/json');
    }
  });

  it('HEAD stays HEAD on a 301 or 303', async () => {
    const a = await recorder();
    const client = createHttpClient(testConfig({ queue: uniqueQueue('redir'), request: { url: `${a.url}/items/{id}`, method: 'HEAD' }, sink: { type: 'file', dir: tmp.dir } }));
    await fetchId(client, { url: `${a.url}/r/301?to=/a`, headers: {}, maxBodyBytes: 1e6 });
    await fetchId(client, { url: `${a.url}/r/303?to=/b`, headers: {}, maxBodyBytes: 1e6 });
    expect(a.seen.map((s) => [s.url, s.method])).toEqual([['/r/301?to=/a', 'HEAD'], ['/a', 'HEAD'], ['/r/303?to=/b', 'HEAD'], ['/b', 'HEAD']]);
  });
});

describe('request.redirects.follow and max', () => {
  it('follow: false answers the redirect itself (client_error, not followed); max caps the hops', async () => {
    const a = await recorder();
    const chain = `${a.url}/r/302?to=${encodeURIComponent(`/r/302?to=${encodeURIComponent('/end')}`)}`;
    const off = config(a.url, {});
    const noFollow = createHttpClient({ ...off, request: { ...off.request, redirects: { ...off.request.redirects, follow: false } } });
    expect(outcome(await fetchId(noFollow, { url: chain, headers: {}, maxBodyBytes: 1e6 }))).toMatchObject({ action: 'fail', error: 'client_error', message: 'HTTP 302 (redirect not followed)' });
    const one = createHttpClient({ ...off, request: { ...off.request, redirects: { ...off.request.redirects, max: 1 } } });
    expect(outcome(await fetchId(one, { url: chain, headers: {}, maxBodyBytes: 1e6 }))).toMatchObject({ action: 'fail', error: 'client_error', message: 'too many redirects' });
    const two = createHttpClient({ ...off, request: { ...off.request, redirects: { ...off.request.redirects, max: 2 } } });
    expect((await fetchId(two, { url: chain, headers: {}, maxBodyBytes: 1e6 })).status).toBe(200);
    expect(a.seen.filter((s) => s.url === '/end')).toHaveLength(1);
  });
});
