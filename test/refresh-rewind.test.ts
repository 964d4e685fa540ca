import { setTimeout as sleep } from 'node:timers/promises';
import got from 'got';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startReplicaPair, type ReplicaPair } from '../scripts/bench/replica-pair.js';
import { buildCredentials } from '../src/auth/build-credentials.js';
import type { Credential } from '../src/auth/credential.js';
import { credentialKey } from '../src/auth/credential-key.js';
import { createLogger } from '../src/logger.js';
import { queueKeys } from '../src/redis/keys.js';
import { startOidcServer } from './helpers/oidc-server.js';
import { cleanQueue, newRedis, onCluster, testConfig, uniqueQueue } from './helpers/test-env.js';

// Redis loses a rotation it acknowledged (a failover to a replica that had not received the commit):
// the promoted Redis holds the refresh token the server rotated away. Sending it again is a reuse,
// which a rotating server treats as theft (it revokes the whole grant). The process that rotated it
// still holds the new one and stores it again instead.

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

let pair: ReplicaPair | undefined;
try {
  if (!onCluster()) pair = await startReplicaPair();
} catch {
  // no redis-server binary here: the replica test below is skipped
}
afterAll(async () => {
  await pair?.stop();
});

async function tokenOf(c: Credential): Promise<string> {
  const out = await c.apply({ method: 'GET', url: 'http://x/items/1', headers: {} });
  return out.headers['authorization']!.replace(/^Bearer /, '');
}

/** A refresh now: drops the process's access token (as a 401 does) and the fleet's. */
async function refreshNow(c: Credential, token: string, redis: Redis, oauthKey: string): Promise<string> {
  await c.onUnauthorized!({ method: 'GET', url: 'http://x/items/1', headers: { authorization: `Bearer ${token}` } });
  await redis.del(oauthKey);
  return tokenOf(c);
}

async function setUp(redis: Redis, queue: string) {
  const s = await startOidcServer({ clients: [{ clientId: 'crm', clientSecret: 'crm-secret' }], accessTokenTtlS: 60 });
  cleanups.push(() => s.close());
  const lines: string[] = [];
  const logger = createLogger('warn', 'human', { write: (l: string) => void lines.push(l) });
  const start = await s.mintRefreshToken('crm');
  const config = testConfig({ queue, request: { url: 'http://127.0.0.1:1/items/{id}' }, sink: { type: 'file', dir: '/tmp/unused' }, auth: { type: 'oauth2', grant: 'refresh_token', tokenUrl: s.tokenUrl, clients: [{ clientId: 'crm', clientSecret: 'crm-secret', refreshToken: start, name: 'crm' }] } });
  const key = await credentialKey(redis, queue);
  const c = buildCredentials({ config, key, redis, queue, http: got, logger })[0]!;
  const k = queueKeys(queue);
  return { s, c, lines, stateKeys: [k.refreshToken(c.id), k.refreshState(c.id)], oauthKey: k.oauth(c.id) };
}

describe.skipIf(onCluster())('a rotated refresh token Redis lost', () => {
  it('Redis rewound to the refresh token before the last rotation: the next refresh sends the rotated one, never the old one (no reuse, no invalid_grant)', async () => {
    const s = await startOidcServer({ clients: [{ clientId: 'crm', clientSecret: 'crm-secret' }], accessTokenTtlS: 2 });
    cleanups.push(() => s.close());
    const queue = uniqueQueue('rtw');
    const redis = newRedis();
    cleanups.push(async () => {
      await cleanQueue(redis, queue);
      redis.disconnect();
    });
    const lines: string[] = [];
    const logger = createLogger('warn', 'human', { write: (l: string) => void lines.push(l) });
    const start = await s.mintRefreshToken('crm');
    const config = testConfig({ queue, request: { url: 'http://127.0.0.1:1/items/{id}' }, sink: { type: 'file', dir: '/tmp/unused' }, auth: { type: 'oauth2', grant: 'refresh_token', tokenUrl: s.tokenUrl, clients: [{ clientId: 'crm', clientSecret: 'crm-secret', refreshToken: start, name: 'crm' }] } });
    const key = await credentialKey(redis, queue);
    const c = buildCredentials({ config, key, redis, queue, http: got, logger })[0]!;
    const k = queueKeys(queue);
    const stateKeys = [k.refreshToken(c.id), k.refreshState(c.id)];

    await tokenOf(c); // the config token, rotated: Redis holds the first rotated one
    const before = await Promise.all(stateKeys.map((key) => redis.dumpBuffer(key)));
    await sleep(1700); // past 80 % of the access token's 2 s
    await tokenOf(c); // rotated again: the one Redis held is spent at the server
    // The rewind: the refresh state as it was before the last rotation, no access token for the fleet.
    for (const [i, key] of stateKeys.entries()) await redis.restore(key, 0, before[i]!, 'REPLACE');
    await redis.del(k.oauth(c.id));
    await sleep(1700);
    const t3 = await tokenOf(c);
    expect((await fetch(`${s.url}/items/a`, { headers: { authorization: `Bearer ${t3}` } })).status).toBe(200);
    expect({ reused: s.counters.refreshReused, invalidGrants: s.counters.invalidGrants, refreshes: s.counters.tokenCalls['refresh_token'] }).toEqual({ reused: 0, invalidGrants: 0, refreshes: 3 });
    expect(lines.join('')).toMatch(/Redis lost the rotated refresh token/);
  });
  it('two rotations lost (Redis rewound two steps): the chain is followed to the newest token, never the one in between', async () => {
    const queue = uniqueQueue('rtw2');
    const redis = newRedis();
    cleanups.push(async () => {
      await cleanQueue(redis, queue);
      redis.disconnect();
    });
    const { s, c, lines, stateKeys, oauthKey } = await setUp(redis, queue);
    const t1 = await tokenOf(c); // RT0 → RT1
    const before = await Promise.all(stateKeys.map((key) => redis.dumpBuffer(key)));
    const t2 = await refreshNow(c, t1, redis, oauthKey); // RT1 → RT2
    const t3 = await refreshNow(c, t2, redis, oauthKey); // RT2 → RT3
    for (const [i, key] of stateKeys.entries()) await redis.restore(key, 0, before[i]!, 'REPLACE'); // Redis holds RT1 again
    const t4 = await refreshNow(c, t3, redis, oauthKey); // must send RT3, not RT2 (spent)
    expect((await fetch(`${s.url}/items/a`, { headers: { authorization: `Bearer ${t4}` } })).status).toBe(200);
    expect({ reused: s.counters.refreshReused, invalidGrants: s.counters.invalidGrants, refreshes: s.counters.tokenCalls['refresh_token'] }).toEqual({ reused: 0, invalidGrants: 0, refreshes: 4 });
    expect(lines.join('')).toMatch(/Redis lost the rotated refresh token/);
  });

  it('Redis rewound to before the first adoption (no refresh token stored): the config token this process rotated away is not sent again', async () => {
    const queue = uniqueQueue('rtw0');
    const redis = newRedis();
    cleanups.push(async () => {
      await cleanQueue(redis, queue);
      redis.disconnect();
    });
    const { s, c, lines, stateKeys, oauthKey } = await setUp(redis, queue);
    const t1 = await tokenOf(c); // the config's RT0 adopted and rotated → RT1
    await redis.del(...stateKeys); // the rewind: nothing adopted, no refresh token
    const t2 = await refreshNow(c, t1, redis, oauthKey); // must send RT1, not RT0 (spent)
    expect((await fetch(`${s.url}/items/a`, { headers: { authorization: `Bearer ${t2}` } })).status).toBe(200);
    expect({ reused: s.counters.refreshReused, invalidGrants: s.counters.invalidGrants, refreshes: s.counters.tokenCalls['refresh_token'] }).toEqual({ reused: 0, invalidGrants: 0, refreshes: 2 });
    expect(lines.join('')).toMatch(/Redis lost the rotated refresh token/);
  });

  it.skipIf(!pair)('a rotation is held under the lock until a replica holds it: the replica stopped, the refresh returns only once it has the new token', async () => {
    const queue = uniqueQueue('rtwr');
    const primary = new Redis(pair!.primaryUrl, { maxRetriesPerRequest: null });
    const replica = new Redis(pair!.replicaUrl, { maxRetriesPerRequest: null });
    cleanups.push(async () => {
      pair!.resumeReplica();
      await cleanQueue(primary, queue);
      primary.disconnect();
      replica.disconnect();
    });
    const { c, lines, stateKeys, oauthKey } = await setUp(primary, queue);
    const t1 = await tokenOf(c);
    pair!.pauseReplica();
    // Attached but silent past three WAITs of 2 s (where the commit used to give up, the rotation on the primary only).
    let stopped = true;
    const resumed = setTimeout(() => {
      stopped = false;
      pair!.resumeReplica();
    }, 6500);
    cleanups.push(() => clearTimeout(resumed));
    await refreshNow(c, t1, primary, oauthKey);
    expect(stopped).toBe(false);
    const [onPrimary, onReplica] = await Promise.all([primary.get(stateKeys[0]!), replica.get(stateKeys[0]!)]);
    expect(onReplica).toBe(onPrimary);
    expect(lines.join('')).toMatch(/storing it again and waiting/);
  });
});
