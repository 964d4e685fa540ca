import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import got from 'got';
import { afterEach, describe, expect, it } from 'vitest';
import { buildCredentials } from '../src/auth/build-credentials.js';
import { CredentialUnavailableError } from '../src/auth/credential-errors.js';
import { credentialKey } from '../src/auth/credential-key.js';
import { RecentValues } from '../src/auth/recent-values.js';
import { cleanQueue, newRedis, quietLogger, testConfig, uniqueQueue } from './helpers/test-env.js';

// A token endpoint that keeps failing (503) is not hammered: after an unavailable answer this process waits
// (1 s, doubling to 30 s) before it calls it again; every request meanwhile fails fast without a call.

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function failingTokenEndpoint(): Promise<{ url: string; calls: () => number }> {
  let calls = 0;
  const server: Server = createServer((req, res) => {
    calls++;
    req.resume();
    res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'temporarily_unavailable' }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`, calls: () => calls };
}

describe('FleetTokenSource: a failing token endpoint is called with backoff, not per request', () => {
  it('503s: one call, then 1 s, 2 s … between calls however many requests ask; the last second of a wait waited out, the rest fails fast', async () => {
    const endpoint = await failingTokenEndpoint();
    const queue = uniqueQueue('ftb');
    const redis = newRedis();
    cleanups.push(async () => {
      await cleanQueue(redis, queue);
      redis.disconnect();
    });
    const config = testConfig({
      queue, request: { url: 'http://127.0.0.1:1/items/{id}' }, sink: { type: 'file', dir: '/tmp/unused' },
      auth: { type: 'oauth2', grant: 'client_credentials', tokenUrl: endpoint.url, clients: [{ clientId: 'svc', clientSecret: 'svc-secret' }] },
    });
    const [cred] = buildCredentials({ config, key: await credentialKey(redis, queue), redis, queue, http: got, logger: quietLogger() });
    const apply = () => Promise.resolve(cred!.apply({ method: 'GET', url: 'http://127.0.0.1:1/items/1', headers: {} })).then(() => 'ok', (e: unknown) => e);

    expect(await apply()).toBeInstanceOf(CredentialUnavailableError);
    expect(endpoint.calls()).toBe(1);
    // 20 requests at once right after: they share one fetch that waits out the 1 s first, then calls once.
    const t0 = Date.now();
    const burst = await Promise.all(Array.from({ length: 20 }, apply));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    for (const e of burst) expect(e).toBeInstanceOf(CredentialUnavailableError);
    expect(endpoint.calls()).toBe(2);
    // The wait doubled (2 s): requests fail fast now, without a call.
    const t1 = Date.now();
    for (let i = 0; i < 20; i++) expect(await apply()).toBeInstanceOf(CredentialUnavailableError);
    expect(Date.now() - t1).toBeLessThan(900);
    expect(endpoint.calls()).toBe(2);
    // In its last second the wait is waited out, then one call.
    await sleep(1_100);
    expect(await apply()).toBeInstanceOf(CredentialUnavailableError);
    expect(endpoint.calls()).toBe(3);
  }, 20_000);
});

describe('RecentValues: the secrets learnt at run time stay bounded', () => {
  it('keeps the last 8 distinct values; adding one again makes it the newest', () => {
    const seen = new RecentValues();
    for (let i = 0; i < 100; i++) seen.add(`token-${i}`);
    expect([...seen]).toEqual(Array.from({ length: 8 }, (_, i) => `token-${92 + i}`));
    seen.add('token-92');
    seen.add('token-100');
    expect([...seen]).toEqual(['token-94', 'token-95', 'token-96', 'token-97', 'token-98', 'token-99', 'token-92', 'token-100']);
  });
});
