import { afterAll, describe, expect, it } from 'vitest';
import { loginCredentials, type LoginAuth } from '../src/auth/kinds/login-credential.js';
import { CredentialRefusedError, CredentialUnavailableError } from '../src/auth/credential-errors.js';
import { createHttpClient } from '../src/jobs/http-client.js';
import { startLoginApi } from './helpers/login-api.js';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { FleetTokenSource, LOCK_MS } from '../src/auth/fleet-token-source.js';
import { LOGIN_TIMEOUT_MS } from '../src/auth/kinds/login-credential.js';
import { queueKeys } from '../src/redis/keys.js';
import { cleanQueue, newRedis, quietLogger, testConfig, uniqueQueue } from './helpers/test-env.js';

// The login kind in-process, as two replicas of a fleet (two pools' credentials on one Redis) against a real
// login API: one login for both, one 401 counted for both when the token dies, then one new login.

const redis = newRedis();
const queues: string[] = [];
afterAll(async () => {
  for (const q of queues) await cleanQueue(redis, q);
  redis.disconnect();
});

async function replicas(loginUrl: string, accounts: { username: string; password: string }[], n = 2) {
  const queue = uniqueQueue('login-tok');
  queues.push(queue);
  const config = testConfig({ queue, request: { url: 'http://127.0.0.1:9/items/{id}' }, auth: { type: 'login', loginUrl, accounts } });
  const key = Buffer.alloc(32, 7);
  return Array.from({ length: n }, () => loginCredentials(config.auth as LoginAuth, config.credentials, { key, redis, queue, http: createHttpClient(config), logger: quietLogger() }));
}

const request = { method: 'GET', url: 'http://127.0.0.1:9/items/x', headers: { accept: 'application/json' } };

describe('login tokens for a fleet', () => {
  it('two replicas share one login; a dead token is dropped once for both (one true, one false), then one new login', async () => {
    const api = await startLoginApi({ accounts: { ann: 'pw-ann' }, lifetime: { type: 'requests', n: 1000 } });
    try {
      const [a, b] = (await replicas(`${api.url}/login`, [{ username: 'ann', password: 'pw-ann' }])).map((r) => r[0]!);
      const [ra, rb] = await Promise.all([a!.apply(request), b!.apply(request)]);
      expect(api.logins.get('ann')).toBe(1);
      expect(ra.headers['authorization']).toBe(`Bearer ${api.issued[0]}`);
      expect(rb.headers).toEqual(ra.headers);
      expect(ra.headers['accept']).toBe('application/json');
      expect(a!.id).toBe(b!.id);
      // Both got a 401 with the same token: only one of them dropped it.
      const dropped = await Promise.all([a!.onUnauthorized!(ra), b!.onUnauthorized!(rb)]);
      expect(dropped.sort()).toEqual([false, true]);
      const [na, nb] = await Promise.all([a!.apply(request), b!.apply(request)]);
      expect(api.logins.get('ann')).toBe(2);
      expect(na.headers['authorization']).toBe(`Bearer ${api.issued[1]}`);
      expect(nb.headers).toEqual(na.headers);
      // A late 401 for the old token says nothing now.
      expect(await a!.onUnauthorized!(ra)).toBe(false);
      expect([...a!.seenSecrets!()]).toEqual(api.issued);
      expect(a!.secrets).toEqual(['pw-ann']);
    } finally {
      await api.close();
    }
  });

  it('a wrong password is a CredentialRefusedError with the quarantine line, asked once per process; an endpoint that is down is unavailable', async () => {
    const api = await startLoginApi({ accounts: { ann: 'pw-ann' }, lifetime: { type: 'expires_in', seconds: 60 } });
    try {
      const bad = (await replicas(`${api.url}/login`, [{ username: 'ann', password: 'wrong-pw' }], 1))[0]![0];
      const err = await Promise.resolve(bad!.apply(request)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CredentialRefusedError);
      expect(err).toMatchObject({ code: 'login_refused', reason: 'login refused (HTTP 401): check its username and password' });
      expect(String((err as Error).message)).not.toContain('wrong-pw');
      await expect(Promise.resolve(bad!.apply(request))).rejects.toBeInstanceOf(CredentialRefusedError);
      expect(api.refusedLogins).toBe(1);
      const down = (await replicas('http://127.0.0.1:9/login', [{ username: 'ann', password: 'pw-ann' }], 1))[0]![0];
      const e2 = await Promise.resolve(down!.apply(request)).catch((e: unknown) => e);
      expect(e2).toBeInstanceOf(CredentialUnavailableError);
      expect(e2).toMatchObject({ code: 'login_unavailable' });
      expect((e2 as Error).message).toMatch(/^login account fp-[0-9a-f]{12}: login endpoint unreachable \(ECONNREFUSED\); retrying later$/);
    } finally {
      await api.close();
    }
  });

  it('a login that hangs gives up before the fleet lock expires (request.timeoutMs 30 s, lock 15 s): no second login can overlap it', async () => {
    expect(LOGIN_TIMEOUT_MS).toBeLessThan(LOCK_MS);
    const hanging = http.createServer(() => {});
    await new Promise<void>((r) => hanging.listen(0, '127.0.0.1', r));
    try {
      const queue = uniqueQueue('login-hang');
      queues.push(queue);
      const url = `http://127.0.0.1:${(hanging.address() as AddressInfo).port}/login`;
      const config = testConfig({ queue, request: { url: 'http://127.0.0.1:9/items/{id}', timeoutMs: 30_000 }, auth: { type: 'login', loginUrl: url, accounts: [{ username: 'ann', password: 'pw-ann' }] } });
      const [c] = loginCredentials(config.auth as LoginAuth, config.credentials, { key: Buffer.alloc(32, 7), redis, queue, http: createHttpClient(config), logger: quietLogger() });
      const started = Date.now();
      const err = await Promise.resolve(c!.apply(request)).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'login_unavailable' });
      expect(Date.now() - started).toBeLessThan(LOCK_MS);
    } finally {
      hanging.closeAllConnections();
      await new Promise((r) => hanging.close(r));
    }
  }, 25_000);

  it('a token fetched after the lock passed to another replica is not stored over that replica\'s token', async () => {
    const queue = uniqueQueue('login-fence');
    queues.push(queue);
    const keys = queueKeys(queue);
    const source = new FleetTokenSource(
      {
        id: 'fp-fence',
        what: 'login account fence',
        sealSecret: 'pw-fence',
        sealSalt: 'ann',
        // The lock expires during this fetch and another replica takes it (and stores its own token).
        fetch: async (lock) => {
          await redis.set(lock.key, 'another-replica', 'PX', LOCK_MS);
          await redis.set(keys.oauth('fp-fence'), 'the-other-replicas-sealed-token', 'PX', 60_000);
          return { token: 'stale-token', expiresIn: 60 };
        },
      },
      { redis, queue, logger: quietLogger() },
    );
    expect(await source.token()).toBe('stale-token');
    expect(await redis.get(keys.oauth('fp-fence'))).toBe('the-other-replicas-sealed-token');
    expect(await redis.get(keys.oauthLock('fp-fence'))).toBe('another-replica');
  });
});
