import { createHmac } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { Credential } from '../src/auth/credential.js';
import type { CustomSigner } from '../src/config.js';
import { signOAuth1 } from '../src/policy/oauth1-signature.js';
import { pullInProcess, type PullOutput } from './helpers/pull-in-process.js';
import { startHmacApi, startOAuth1Api, type SigningApi } from './helpers/signing-apis.js';
import { cleanQueue, newRedis, onCluster, tempDir, testConfig, uniqueQueue } from './helpers/test-env.js';
import { createPullq } from '../src/api/create-pullq.js';
import { createLogger } from '../src/logger.js';

// OAuth 1.0a (auth type "oauth1") and the library's custom signer, end to end: whole pulls against APIs that
// verify every signature (oauth-1.0a recomputes them on the server side), with IDs that stress percent-encoding,
// query parameters in request.url, pagination (each page a signed request) and a retried ID.
// The cluster project runs the first case only.

const tmp = tempDir('oauth1');
afterAll(() => tmp.remove());
let api: SigningApi | undefined;
afterEach(async () => {
  await api?.close();
  api = undefined;
});

/** IDs where clients usually get the encoding wrong, a retried one, and plain ones for volume. */
const STRESS = ['a b', 'a+b', 'a*b', "it's", '(x)', 'x)', '~tilde', 'bang!', 'über', '日本', 'a/b', '100%', 'q=1&r'];
const ids = (n: number) => [...STRESS, 'retry-me', ...Array.from({ length: n }, (_, i) => `n-${i}`)];
const PAGES = 2;

const CONSUMERS = { 'ck-one': "cs one+*'()", 'ck-two': 'cs&two~ü' };
const TOKENS = { 'tok-one': 'ts one!', 'tok-two': 'ts/two%' };
const credentials = [
  { consumerKey: 'ck-one', consumerSecret: "cs one+*'()", token: 'tok-one', tokenSecret: 'ts one!', name: 'ns-1' },
  { consumerKey: 'ck-two', consumerSecret: 'cs&two~ü', token: 'tok-two', tokenSecret: 'ts/two%', name: 'ns-2' },
];

function config(url: string, auth: Record<string, unknown>) {
  const queue = uniqueQueue('oa1');
  mkdirSync(path.join(tmp.dir, queue));
  return testConfig({
    queue,
    request: { url: `${url}/items/{id}?q={id}&view=full%20text&sort=name%2Basc`, pagination: { type: 'page', param: 'page', itemsPath: 'items', maxPages: 10 }, timeoutMs: 5000 },
    auth,
    retry: { attempts: 4, baseDelayMs: 20, maxDelayMs: 200 },
    worker: { concurrency: 8 },
    enqueue: { batchSize: 10 },
    sink: { type: 'file', dir: path.join(tmp.dir, queue) },
  });
}

/** Every ID exactly once, all succeeded, each of its pages answered once (a retried page twice at most: the 503). */
function expectEveryIdOnce(out: PullOutput, all: string[], api: SigningApi) {
  expect(out.failed).toEqual([]);
  expect(out.results.map((r) => r.id).sort()).toEqual([...all].sort());
  for (const id of all) for (let page = 1; page <= PAGES + 1; page++) expect(api.stats.served.get(`${id}#${page}`), `${id} page ${page}`).toBe(1);
  // The pages' items merged (itemsPath), each page's query as the API decoded it: the ID itself.
  for (const r of out.results) expect((r.data as { id: string; page: number; q: string }[]).map((i) => [i.id, i.page, i.q])).toEqual(Array.from({ length: PAGES }, (_, i) => [r.id, i + 1, r.id]));
}

describe('auth type oauth1 against an API that verifies with oauth-1.0a', () => {
  it('HMAC-SHA256 with a realm, two credentials, 2 workers: every ID, page and retry signed afresh; exactly once, zero signature failures', async () => {
    api = await startOAuth1Api({ consumers: CONSUMERS, tokens: TOKENS, realm: '1234567', failOnce: ['retry-me'], pages: PAGES });
    const all = ids(onCluster() ? 10 : 40);
    const out = await pullInProcess(config(api.url, { type: 'oauth1', signatureMethod: 'HMAC-SHA256', realm: '1234567', credentials }), all, { workers: 2 });
    expect(api.stats.rejected).toEqual(new Map());
    expect(api.stats.unavailable).toBe(1);
    expectEveryIdOnce(out, all, api);
    // Both credentials carried the run; every request was signed (pages + the 503's retry).
    expect(api.stats.byKey.get('ck-one')).toBeGreaterThan(0);
    expect(api.stats.byKey.get('ck-two')).toBeGreaterThan(0);
    expect(api.stats.requests).toBe(all.length * (PAGES + 1) + 1);
  });

  it.skipIf(onCluster()).each([
    ['HMAC-SHA1', undefined],
    ['PLAINTEXT', 'Acme "EU"'],
    ['HMAC-SHA256', undefined],
  ] as const)('%s, realm %j: exactly once, zero signature failures', async (signatureMethod, realm) => {
    api = await startOAuth1Api({ consumers: CONSUMERS, tokens: TOKENS, realm, failOnce: ['retry-me'], pages: PAGES });
    const all = ids(10);
    const out = await pullInProcess(config(api.url, { type: 'oauth1', signatureMethod, ...(realm !== undefined ? { realm } : {}), credentials }), all);
    expect(api.stats.rejected).toEqual(new Map());
    expectEveryIdOnce(out, all, api);
  });

  it.skipIf(onCluster())('a wrong consumer secret: its 401s quarantine it, the other credential carries the run', async () => {
    api = await startOAuth1Api({ consumers: CONSUMERS, tokens: TOKENS, pages: PAGES });
    const all = ids(20);
    const quarantined: { credential: Credential; reason: string }[] = [];
    const wrong = [{ ...credentials[0]!, consumerSecret: 'not the secret', name: 'wrong' }, credentials[1]!];
    const out = await pullInProcess(config(api.url, { type: 'oauth1', signatureMethod: 'HMAC-SHA1', credentials: wrong }), all, {
      worker: { events: { request: () => undefined, committed: () => undefined, rest: () => undefined, quarantine: (e) => quarantined.push(e) } },
    });
    expect(quarantined.map((q) => [q.credential.label, q.reason])).toEqual([['wrong', 'unauthorized']]);
    expect(api.stats.rejected.get('bad_signature')).toBeGreaterThan(0);
    expect([...api.stats.rejected.keys()]).toEqual(['bad_signature']);
    expectEveryIdOnce(out, all, api);
  });

  it.skipIf(onCluster())('the verifying API is strict: a replayed request, a stale timestamp and a changed query are 401s', async () => {
    api = await startOAuth1Api({ consumers: CONSUMERS, tokens: TOKENS, pages: PAGES });
    const keys = { consumerKey: 'ck-one', consumerSecret: CONSUMERS['ck-one'], token: 'tok-one', tokenSecret: TOKENS['tok-one'] };
    const url = `${api.url}/items/a%20b?q=${encodeURIComponent("it's (x)")}`;
    const send = (u: string, authorization: string) => fetch(u, { headers: { authorization } }).then((r) => r.status);
    const now = () => Math.floor(Date.now() / 1000);
    const good = signOAuth1({ method: 'GET', url }, keys, { method: 'HMAC-SHA256', nonce: 'n-1', timestamp: now() }).authorization;
    expect(await send(url, good)).toBe(200);
    expect(await send(url, good)).toBe(401);
    expect(await send(url, signOAuth1({ method: 'GET', url }, keys, { method: 'HMAC-SHA256', nonce: 'n-2', timestamp: now() - 3600 }).authorization)).toBe(401);
    expect(await send(`${url}x`, signOAuth1({ method: 'GET', url }, keys, { method: 'HMAC-SHA256', nonce: 'n-3', timestamp: now() }).authorization)).toBe(401);
    expect(Object.fromEntries(api.stats.rejected)).toEqual({ nonce_used: 1, stale_timestamp: 1, bad_signature: 1 });
  });
});

/** The X-Signature scheme startHmacApi verifies: HMAC-SHA256 over method, path and query as sent, timestamp, body. */
const hmacSigner: CustomSigner = (request, credential) => {
  const timestamp = String(Date.now());
  const url = new URL(request.url); // what the HTTP client sends: WHATWG URL serialization
  const text = `${request.method}\n${url.pathname}${url.search}\n${timestamp}\n${request.body ?? ''}`;
  request.headers['x-key-id'] = String(credential['keyId']);
  request.headers['x-timestamp'] = timestamp;
  request.headers['x-signature'] = createHmac('sha256', String(credential['secret'])).update(text).digest('hex');
};

describe('auth type custom (library): an HMAC signer', () => {
  it.skipIf(onCluster())('POST with a JSON body, pagination, a retried ID, two credentials: exactly once, zero signature failures', async () => {
    api = await startHmacApi({ keys: { 'key-a': 'secret a', 'key-b': 'secret b' }, failOnce: ['retry-me'], pages: PAGES });
    const all = ids(20);
    const queue = uniqueQueue('hmac');
    mkdirSync(path.join(tmp.dir, queue));
    const cfg = testConfig({
      queue,
      request: { url: `${api.url}/items/{id}?q={id}`, method: 'POST', body: { id: '{id}' }, pagination: { type: 'page', param: 'page', itemsPath: 'items' } },
      auth: { type: 'custom', sign: hmacSigner, credentials: [{ keyId: 'key-a', secret: 'secret a', name: 'a' }, { keyId: 'key-b', secret: 'secret b' }] },
      retry: { attempts: 4, baseDelayMs: 20, maxDelayMs: 200 },
      worker: { concurrency: 8 },
      enqueue: { batchSize: 10 },
      sink: { type: 'file', dir: path.join(tmp.dir, queue) },
    });
    const out = await pullInProcess(cfg, all, { workers: 2 });
    expect(api.stats.rejected).toEqual(new Map());
    expectEveryIdOnce(out, all, api);
    expect(api.stats.byKey.get('key-a')).toBeGreaterThan(0);
    expect(api.stats.byKey.get('key-b')).toBeGreaterThan(0);
    for (const r of out.results) expect((r.data as { body: string }[])[0]!.body).toBe(JSON.stringify({ id: r.id }));
  });
});

describe('auth type custom (library): a signer that throws', () => {
  it.skipIf(onCluster())('fails that try only: one line without the secret or a stack, the ID retried and pulled once; not quarantined', async () => {
    api = await startHmacApi({ keys: { 'key-a': 'secret a' } });
    const all = ['ok-1', 'throws-1', 'throws-2', 'ok-2', 'a b'];
    const thrown = new Set<string>();
    const sign: CustomSigner = (request, credential) => {
      const id = decodeURIComponent(new URL(request.url).pathname.split('/').pop()!);
      if (id.startsWith('throws') && !thrown.has(id)) {
        thrown.add(id);
        throw new Error(`signing with ${String(credential['secret'])} failed\n    at sign (signer.js:1:1)`);
      }
      hmacSigner(request, credential);
    };
    const queue = uniqueQueue('hmac-throw');
    mkdirSync(path.join(tmp.dir, queue));
    const lines: string[] = [];
    const cfg = testConfig({
      queue,
      request: { url: `${api.url}/items/{id}` },
      auth: { type: 'custom', sign, credentials: [{ keyId: 'key-a', secret: 'secret a', name: 'a' }] },
      retry: { attempts: 3, baseDelayMs: 20, maxDelayMs: 100 },
      sink: { type: 'file', dir: path.join(tmp.dir, queue) },
    });
    const pullq = createPullq(cfg, { logger: createLogger('info', 'human', { write: (l) => lines.push(l) }) });
    try {
      const r = await pullq.pull(all, { run: 'throws' });
      expect(r.complete).toBe(true);
      expect(r.status).toMatchObject({ total: 5, succeeded: 5, failed: 0 });
    } finally {
      await pullq.close();
      const redis = newRedis();
      await cleanQueue(redis, queue);
      redis.disconnect();
    }
    expect(thrown.size).toBe(2);
    expect(lines.join('')).not.toContain('quarantined');
    expect(api.stats.rejected).toEqual(new Map());
    const text = lines.join('');
    expect(text.match(/the custom signer threw \(signing with \[redacted\] failed\) for credential a; the try is retried/g)).toHaveLength(2);
    expect(text).not.toContain('secret a');
    expect(text).not.toContain('signer.js');
  });
});
