import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import got from 'got';
import { Cluster, type Redis } from 'ioredis';
import * as oauth from 'oauth4webapi';
import { afterEach, describe, expect, it } from 'vitest';
import { buildCredentials } from '../src/auth/build-credentials.js';
import type { Credential, OutgoingRequest } from '../src/auth/credential.js';
import { credentialKey } from '../src/auth/credential-key.js';
import { CredentialRefusedError, CredentialUnavailableError } from '../src/auth/credential-errors.js';
import { RefreshTokenStore } from '../src/auth/refresh-token-store.js';
import { refreshTokenStoreOf } from '../src/auth/kinds/oauth2-credential.js';
import { createLogger } from '../src/logger.js';
import { queueKeys } from '../src/redis/keys.js';
import { RefreshScripts } from '../src/redis/refresh-scripts.js';
import { runCli, spawnCli } from './helpers/cli.js';
import { expectEveryIdOnce, fleetFixture, type FleetFixture } from './helpers/fleet-fixture.js';
import { startOidcServer, type OidcServer } from './helpers/oidc-server.js';
import { startTokenProxy, type TokenProxy } from './helpers/token-proxy.js';
import { cleanQueue, newRedis, onCluster, testConfig, uniqueQueue } from './helpers/test-env.js';

// OAuth2 refresh tokens against the certified oidc-provider (test/helpers/oidc-server.ts): rotation at
// every use, access tokens living a few seconds, the fleet's one refresh per client at a time, lost
// answers (test/helpers/token-proxy.ts), refused grants. The cluster project runs the first fleet test
// only (the exactly-once pull); the others go through the same scripts and keys on one Redis.

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function oidc(options: Parameters<typeof startOidcServer>[0]): Promise<OidcServer> {
  const s = await startOidcServer(options);
  cleanups.push(() => s.close());
  return s;
}

async function proxyTo(upstream: string, plan?: Parameters<typeof startTokenProxy>[1]): Promise<TokenProxy> {
  const p = await startTokenProxy(upstream, plan);
  cleanups.push(() => p.close());
  return p;
}

const request = (url: string): OutgoingRequest => ({ method: 'GET', url, headers: {} });

/** A refresh-grant client pool built in-process (no CLI): the credentials and their Redis. */
async function inProcess(auth: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const queue = uniqueQueue('rt');
  const redis = newRedis();
  const lines: string[] = [];
  const logger = createLogger('warn', 'human', { write: (l: string) => void lines.push(l) });
  cleanups.push(async () => {
    await cleanQueue(redis, queue);
    redis.disconnect();
  });
  const config = testConfig({ queue, request: { url: 'http://127.0.0.1:1/items/{id}' }, sink: { type: 'file', dir: '/tmp/unused' }, auth, ...extra });
  const key = await credentialKey(redis, queue);
  const build = () => buildCredentials({ config, key, redis, queue, http: got, logger });
  const kindContext = { key, redis, queue, http: got, logger };
  return { queue, redis, lines, build, config, kindContext, creds: build() };
}

async function tokenOf(c: Credential): Promise<string> {
  const out = await c.apply(request('http://x/items/1'));
  return out.headers['authorization']!.replace(/^Bearer /, '');
}

async function apiStatus(s: OidcServer, token: string): Promise<number> {
  return (await fetch(`${s.url}/items/a`, { headers: { authorization: `Bearer ${token}` } })).status;
}

/** Every pullq key of a queue with its value (strings and hashes), on every master. */
async function redisDump(redis: Redis): Promise<string> {
  const client = redis as unknown as Redis | Cluster;
  await client.ping();
  const out: string[] = [];
  for (const node of client instanceof Cluster ? client.nodes('master') : [client]) {
    for (const key of await node.keys('pullq:*')) {
      const type = await node.type(key);
      out.push(key, type === 'string' ? ((await node.get(key)) ?? '') : type === 'hash' ? JSON.stringify(await node.hgetall(key)) : '');
    }
  }
  return out.join('\n');
}

describe.skipIf(onCluster())('oidc-provider 9 as the authorization server', () => {
  it('rotates the refresh token at every use; a reused one answers invalid_grant and revokes the whole grant', async () => {
    const s = await oidc({ clients: [{ clientId: 'conf', clientSecret: 'conf-secret' }, { clientId: 'pub' }], accessTokenTtlS: 3 });
    const as = { issuer: s.issuer, token_endpoint: s.tokenUrl };
    const insecure = { [oauth.allowInsecureRequests]: true };
    for (const [clientId, auth] of [['conf', oauth.ClientSecretBasic('conf-secret')], ['pub', oauth.None()]] as const) {
      const client = { client_id: clientId };
      const first = await s.mintRefreshToken(clientId);
      const a = await oauth.processRefreshTokenResponse(as, client, await oauth.refreshTokenGrantRequest(as, client, auth, first, insecure));
      expect(a.refresh_token).toBeTruthy();
      expect(a.refresh_token).not.toBe(first);
      expect(a.expires_in).toBe(3);
      expect(await apiStatus(s, a.access_token)).toBe(200);
      // The rotated (consumed) token again: invalid_grant, and the grant is revoked (newest refresh and access tokens too).
      const reuse = await oauth.refreshTokenGrantRequest(as, client, auth, first, insecure);
      await expect(oauth.processRefreshTokenResponse(as, client, reuse)).rejects.toMatchObject({ error: 'invalid_grant', status: 400 });
      expect(await s.refreshTokenUsable(a.refresh_token!)).toBe(false);
      expect(await apiStatus(s, a.access_token)).toBe(401);
    }
    expect(s.counters.tokenCalls['refresh_token']).toBe(4);
    expect(s.counters.refreshReused).toBe(2);
    expect(s.counters.invalidGrants).toBe(2);
  });
});

describe.skipIf(onCluster())('the rotation scripts are fenced by the refresh lock', () => {
  it('a replica whose lock expired stores nothing once another holds the lock or began a refresh; alone, it still stores', async () => {
    const queue = uniqueQueue('rts');
    const redis = newRedis();
    cleanups.push(async () => {
      await cleanQueue(redis, queue);
      redis.disconnect();
    });
    const k = queueKeys(queue);
    const scripts = new RefreshScripts(redis, queue, 'c1');
    const lock = k.oauthLock('c1');
    await redis.set(k.refreshToken('c1'), 'sealed-0');
    const commit = (owner: string) => scripts.commit({ owner, sent: 'sealed-0', rotated: 'sealed-1', access: 'access-1', ttlMs: 5000 });

    await redis.set(lock, 'A');
    expect(await scripts.begin({ owner: 'A', read: 'sealed-0', tries: 1 })).toBe('marked');
    expect(await scripts.begin({ owner: 'B', read: 'sealed-0', tries: 1 })).toBe('not-owner');
    // A's lock expired and B took it: A's answer overwrites nothing.
    await redis.set(lock, 'B');
    expect(await commit('A')).toBe('not-owner');
    expect(await redis.get(k.refreshToken('c1'))).toBe('sealed-0');
    // B began (the mark is B's), then its lock expired too: A still stores nothing.
    expect(await scripts.begin({ owner: 'B', read: 'sealed-0', tries: 2 })).toBe('marked');
    await redis.del(lock);
    expect(await commit('A')).toBe('not-owner');
    // B, alone with its own mark: stores the access token and the rotated refresh token, and resolves the mark.
    expect(await commit('B')).toBe('rotated');
    expect(await redis.get(k.refreshToken('c1'))).toBe('sealed-1');
    expect(await redis.get(k.oauth('c1'))).toBe('access-1');
    expect(await redis.hgetall(k.refreshState('c1'))).toEqual({});
    // A refusal marks the token sent refused, once the caller holds the lock; the stored one changed: only resolved.
    await redis.set(lock, 'C');
    expect(await scripts.begin({ owner: 'C', read: 'sealed-0', tries: 1 })).toBe('changed');
    expect(await scripts.begin({ owner: 'C', read: 'sealed-1', tries: 1 })).toBe('marked');
    expect(await scripts.end({ owner: 'D', sent: 'sealed-1', refusedReason: 'r' })).toBe(false);
    expect(await scripts.end({ owner: 'C', sent: 'sealed-1', refusedReason: 'refused: run pullq login --client c1' })).toBe(true);
    expect(await redis.hgetall(k.refreshState('c1'))).toEqual({ dead: 'sealed-1', deadReason: 'refused: run pullq login --client c1' });
  });
});

describe.skipIf(onCluster())('refresh grants in one process', () => {
  it('grant refresh_token: starts from the config token, stores each rotated one sealed, never sends a rotated one again (a restart included)', async () => {
    const s = await oidc({ clients: [{ clientId: 'crm', clientSecret: 'crm-secret' }], accessTokenTtlS: 2 });
    const start = await s.mintRefreshToken('crm');
    const p = await inProcess({ type: 'oauth2', grant: 'refresh_token', tokenUrl: s.tokenUrl, clients: [{ clientId: 'crm', clientSecret: 'crm-secret', refreshToken: start, name: 'crm' }] });
    const c = p.creds[0]!;
    const t1 = await tokenOf(c);
    expect(await apiStatus(s, t1)).toBe(200);
    expect(await tokenOf(c)).toBe(t1);
    await sleep(1700); // past 80 % of 2 s
    const t2 = await tokenOf(c);
    expect(t2).not.toBe(t1);
    expect(await apiStatus(s, t2)).toBe(200);
    // A new process (same config, same Redis): it goes on from the fleet's newest refresh token, not the config's.
    await p.redis.del(queueKeys(p.queue).oauth(c.id));
    const again = p.build()[0]!;
    const t3 = await tokenOf(again);
    expect(await apiStatus(s, t3)).toBe(200);
    expect(s.counters.tokenCalls['refresh_token']).toBe(3);
    expect(s.counters.refreshReused).toBe(0);
    expect(s.counters.invalidGrants).toBe(0);
    const dump = await redisDump(p.redis);
    expect(dump).toContain(':rt');
    for (const secret of [start, t1, t2, t3, 'crm-secret', ...again.seenSecrets!()]) expect(dump).not.toContain(secret);
  });

  it('grant authorization_code with no refresh token stored yet: refused with the pullq login line, no token-endpoint call', async () => {
    const s = await oidc({ clients: [{ clientId: 'web' }] });
    const p = await inProcess({ type: 'oauth2', grant: 'authorization_code', tokenUrl: s.tokenUrl, authorizeUrl: s.authorizeUrl, sealKey: 'seal-key-for-tests', clients: [{ clientId: 'web', name: 'web' }] });
    const err = await Promise.resolve(p.creds[0]!.apply(request('http://x/items/1'))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CredentialRefusedError);
    expect((err as CredentialRefusedError).reason).toBe('no refresh token yet: run pullq login --client web');
    expect(s.counters.tokenCalls).toEqual({});
    // What `pullq login` does once it has exchanged the code: the store of that client, then refreshes work.
    const auth = p.config.auth as Extract<typeof p.config.auth, { type: 'oauth2' }>;
    await refreshTokenStoreOf(auth, p.config.credentials[0]!, p.kindContext).write(await s.mintRefreshToken('web'));
    expect(await apiStatus(s, await tokenOf(p.creds[0]!))).toBe(200);
    expect(s.counters.tokenCalls['refresh_token']).toBe(1);
  });

  it('a public client without auth.sealKey: sealed under the deployment key, said once', async () => {
    const s = await oidc({ clients: [{ clientId: 'pub-1' }, { clientId: 'pub-2' }] });
    const [rt1, rt2] = [await s.mintRefreshToken('pub-1'), await s.mintRefreshToken('pub-2')];
    const p = await inProcess({ type: 'oauth2', grant: 'refresh_token', tokenUrl: s.tokenUrl, clients: [{ clientId: 'pub-1', refreshToken: rt1 }, { clientId: 'pub-2', refreshToken: rt2 }] });
    for (const c of p.creds) expect(await apiStatus(s, await tokenOf(c))).toBe(200);
    const warnings = p.lines.filter((l) => l.includes('sealed in Redis under the deployment key'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('set auth.sealKey');
    const dump = await redisDump(p.redis);
    for (const c of p.creds) for (const secret of c.seenSecrets!()) expect(dump).not.toContain(secret);
  });

  it('a lost answer (the server rotated, the connection cut): detected, the same token sent once more, quarantine with the line, then no call at all', async () => {
    const s = await oidc({ clients: [{ clientId: 'crm', clientSecret: 'crm-secret' }], accessTokenTtlS: 2 });
    const proxy = await proxyTo(s.url, ({ n }) => (n === 0 ? 'cut' : 'pass'));
    const p = await inProcess({ type: 'oauth2', grant: 'refresh_token', tokenUrl: `${proxy.url}/token`, clients: [{ clientId: 'crm', clientSecret: 'crm-secret', refreshToken: await s.mintRefreshToken('crm'), name: 'crm' }] });
    const c = p.creds[0]!;
    const lost = await Promise.resolve(c.apply(request('http://x/items/1'))).catch((e: unknown) => e);
    expect(lost).toBeInstanceOf(CredentialUnavailableError);
    expect((lost as Error).message).toContain('the token-endpoint answer was lost');
    expect(proxy.cut).toBe(1);
    // The next refresh finds the mark: the same token once more; the provider had rotated it: invalid_grant.
    const refused = await Promise.resolve(c.apply(request('http://x/items/1'))).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(CredentialRefusedError);
    expect((refused as CredentialRefusedError).reason).toBe('refresh token refused (invalid_grant) after a lost token-endpoint answer (the server had rotated it): put a new auth.clients[0].refreshToken in the config and restart');
    expect(p.lines.filter((l) => l.includes('sending the same refresh token once more'))).toHaveLength(1);
    // No loop: later refreshes (this process, a new one) refuse without calling the token endpoint.
    for (const again of [c, p.build()[0]!]) {
      const e = await Promise.resolve(again.apply(request('http://x/items/1'))).catch((x: unknown) => x);
      expect((e as CredentialRefusedError).reason).toBe((refused as CredentialRefusedError).reason);
    }
    expect(s.counters.tokenCalls['refresh_token']).toBe(2);
    expect(s.counters.refreshReused).toBe(1);
    expect(s.counters.invalidGrants).toBe(1);
    // A new refresh token stored for the fleet (what `pullq login` does): the refusal and the quarantine lifted, refreshes resume.
    const k = queueKeys(p.queue);
    await p.redis.hset(k.cred(c.id), 'qUntil', Date.now() + 3_600_000, 'qReason', 'refused');
    await new RefreshTokenStore(p.redis, p.queue, c.id, 'crm-secret', 'crm').write(await s.mintRefreshToken('crm'));
    expect(await p.redis.hget(k.cred(c.id), 'qUntil')).toBeNull();
    expect(await apiStatus(s, await tokenOf(c))).toBe(200);
    expect(s.counters.tokenCalls['refresh_token']).toBe(3);
  });

  it('a request the server never got (held by the proxy, the client gave up): the same token works on the second attempt', async () => {
    const s = await oidc({ clients: [{ clientId: 'crm', clientSecret: 'crm-secret' }] });
    // Held 12 s: longer than the 10 s time-out, so pullq gives up first and the proxy never forwards it.
    const proxy = await proxyTo(s.url, ({ n }) => (n === 0 ? { hold: 12_000 } : 'pass'));
    const p = await inProcess({ type: 'oauth2', grant: 'refresh_token', tokenUrl: `${proxy.url}/token`, clients: [{ clientId: 'crm', clientSecret: 'crm-secret', refreshToken: await s.mintRefreshToken('crm'), name: 'crm' }] });
    const c = p.creds[0]!;
    const lost = await Promise.resolve(c.apply(request('http://x/items/1'))).catch((e: unknown) => e);
    expect((lost as Error).message).toContain('no answer within the time-out');
    await sleep(2500);
    expect(proxy.dropped).toBe(1);
    expect(await apiStatus(s, await tokenOf(c))).toBe(200);
    expect(s.counters.tokenCalls['refresh_token']).toBe(1);
    expect(s.counters.refreshReused).toBe(0);
  }, 40_000);

  it('a 503 from the token endpoint: unavailable, retried later with the same token as a first attempt (nothing was rotated)', async () => {
    const s = await oidc({ clients: [{ clientId: 'crm', clientSecret: 'crm-secret' }] });
    const proxy = await proxyTo(s.url, ({ n }) => (n === 0 ? { status: 503 } : 'pass'));
    const p = await inProcess({ type: 'oauth2', grant: 'refresh_token', tokenUrl: `${proxy.url}/token`, clients: [{ clientId: 'crm', clientSecret: 'crm-secret', refreshToken: await s.mintRefreshToken('crm'), name: 'crm' }] });
    const c = p.creds[0]!;
    const err = await Promise.resolve(c.apply(request('http://x/items/1'))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CredentialUnavailableError);
    expect((err as Error).message).toContain('token endpoint answered (HTTP 503); trying again later');
    expect(await apiStatus(s, await tokenOf(c))).toBe(200);
    expect(p.lines.join('\n')).not.toContain('once more');
    expect(s.counters.refreshReused).toBe(0);
  });
});

// ---- Whole fleets: pull + worker processes (the built CLI), as test/fleet.test.ts runs them.

const ids = (n: number, p = 'id') => Array.from({ length: n }, (_, i) => `${p}-${i}`);

async function fleetOf(config: Record<string, unknown>, all: string[]): Promise<FleetFixture> {
  return fleetFixture({ label: 'rtf', config, ids: all, cleanups });
}

/** The pid, among `pids`, of the local process whose TCP socket has local port `port` (Linux /proc, no tool needed). */
async function pidOfPort(port: number | undefined, pids: number[]): Promise<number | undefined> {
  if (port === undefined) return undefined;
  const { readFileSync, readdirSync, readlinkSync } = await import('node:fs');
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[1]?.endsWith(`:${hexPort}`)) inodes.add(f[9]!);
    }
  }
  for (const pid of pids) {
    let fds: string[] = [];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m && inodes.has(m[1]!)) return pid;
      } catch {
        // closed meanwhile
      }
    }
  }
  return undefined;
}

const hashOf = (token: string): string => createHash('sha256').update(token).digest('hex').slice(0, 12);

const clientIdOf = (headers: Record<string, string | string[] | undefined>): string => {
  const basic = String(headers['authorization'] ?? '').replace(/^Basic /, '');
  return decodeURIComponent(Buffer.from(basic, 'base64').toString('utf8').split(':')[0] ?? '');
};

describe('refresh tokens across a fleet (pull + 2 workers)', () => {
  it('access tokens living 3 s, rotation on: every ID once, no invalid_grant, no refresh token used twice, about one refresh per expiry for the fleet', async () => {
    const ttlS = 3;
    const s = await oidc({ clients: [{ clientId: 'crm', clientSecret: 'crm-secret' }], accessTokenTtlS: ttlS });
    const all = ids(onCluster() ? 120 : 300);
    const f = await fleetOf(
      {
        request: { url: `${s.url}/items/{id}` },
        auth: { type: 'oauth2', grant: 'refresh_token', tokenUrl: s.tokenUrl, clients: [{ clientId: 'crm', clientSecret: 'crm-secret', refreshToken: await s.mintRefreshToken('crm'), name: 'crm' }] },
        budget: { requests: 30, perSeconds: 1 },
        worker: { concurrency: 8 },
        enqueue: { batchSize: 20 },
      },
      all,
    );
    const ws = f.workers(2);
    const started = Date.now();
    const r = await runCli(['pull', 'ids.txt', '--run', 'rt'], { cwd: f.dir, env: f.env });
    const seconds = (Date.now() - started) / 1000;
    expect(r.code, r.stderr).toBe(0);
    expect(expectEveryIdOnce(f.dir, 'rt', all).failed).toEqual([]);
    const calls = s.counters.tokenCalls['refresh_token'] ?? 0;
    // The window the fleet needed tokens in: from the first ID served to the last (pull's start-up excluded).
    const windowS = (s.counters.lastOkAt - s.counters.firstOkAt) / 1000;
    const perExpiry = calls / (windowS / ttlS);
    const refreshesPerExpiry = (calls - 1) / (windowS / ttlS);
    console.log(`oauth2 refresh_token, fleet of 3 (pull + 2 workers), access tokens of ${ttlS} s: ${calls} token-endpoint calls over ${windowS.toFixed(1)} s of pulling (${seconds.toFixed(1)} s in all) = ${perExpiry.toFixed(2)} per expiry, ${refreshesPerExpiry.toFixed(2)} without the first (refresh at 80 %: 1.25; one per replica would be 3.75); ${s.counters.api401} 401s`);
    expect(s.counters.invalidGrants).toBe(0);
    expect(s.counters.refreshReused).toBe(0);
    // For the fleet, not per replica: refreshed at 80 % of 3 s, about one call per 2.4 s of pulling (+ the first, + a 401's).
    expect(calls).toBeGreaterThanOrEqual(Math.floor(windowS / (ttlS * 0.8)));
    expect(calls).toBeLessThanOrEqual(Math.ceil(windowS / (ttlS * 0.8)) + 2);
    for (const w of ws) w.child.kill('SIGTERM');
    const logs = [r.stderr, r.stdout, ...(await Promise.all(ws.map((w) => w.done))).flatMap((d) => [d.stderr, d.stdout])].join('\n');
    expect(logs).not.toContain('invalid_grant');
  }, 90_000);

  it.skipIf(onCluster())('a worker SIGKILLed while its refresh is held at the proxy: the server never got it, another replica sends it again once, every ID once', async () => {
    const s = await oidc({ clients: [{ clientId: 'crm', clientSecret: 'crm-secret' }], accessTokenTtlS: 3 });
    let workerPids: number[] = [];
    let killed: number | undefined;
    const proxy = await proxyTo(s.url, async (post) => {
      if (killed !== undefined || post.n === 0) return 'pass';
      const pid = await pidOfPort(post.remotePort, workerPids);
      if (pid === undefined) return 'pass';
      killed = pid;
      return { hold: 4000 };
    });
    const all = ids(300);
    const f = await fleetOf(
      {
        request: { url: `${s.url}/items/{id}` },
        auth: { type: 'oauth2', grant: 'refresh_token', tokenUrl: `${proxy.url}/token`, clients: [{ clientId: 'crm', clientSecret: 'crm-secret', refreshToken: await s.mintRefreshToken('crm'), name: 'crm' }] },
        budget: { requests: 30, perSeconds: 1 },
        worker: { concurrency: 8, lockDurationMs: 3000 },
        enqueue: { batchSize: 20 },
      },
      all,
    );
    const ws = f.workers(2);
    workerPids = ws.map((w) => w.child.pid!);
    // --workers 0: only the two workers refresh, so the one held is a worker's and the pull cannot refresh around it.
    const pull = spawnCli(['pull', 'ids.txt', '--run', 'rt-kill', '--workers', '0'], { cwd: f.dir, env: f.env });
    const first = await Promise.race([proxy.held().then(() => 'held' as const), pull.done.then(() => 'pull ended' as const)]);
    expect(first).toBe('held');
    const victim = ws.find((w) => w.child.pid === killed)!;
    victim.child.kill('SIGKILL');
    const r = await pull.done;
    expect(r.code, r.stderr).toBe(0);
    expect(expectEveryIdOnce(f.dir, 'rt-kill', all).failed).toEqual([]);
    expect(proxy.dropped).toBe(1);
    expect(s.counters.refreshReused).toBe(0);
    expect(s.counters.invalidGrants).toBe(0);
    for (const w of ws) if (w !== victim) w.child.kill('SIGTERM');
    const logs = [r.stderr, ...(await Promise.all(ws.map((w) => w.done))).map((d) => d.stderr)].join('\n');
    // Found by the replica that took the lock after the dead one's expired: said once, sent once more.
    expect(logs.match(/the last token-endpoint answer was lost; sending the same refresh token once more/g)).toHaveLength(1);
    expect(logs).not.toContain('quarantined');
  }, 120_000);

  it.skipIf(onCluster())('a worker SIGKILLed after the server rotated (its answer held at the proxy): another replica finds the mark, sends the token once more, invalid_grant: the one quarantine line, the other client carries the run', async () => {
    const s = await oidc({ clients: [{ clientId: 'crm-a', clientSecret: 'secret-a' }, { clientId: 'crm-b', clientSecret: 'secret-b' }], accessTokenTtlS: 3 });
    let workerPids: number[] = [];
    let killed: number | undefined;
    // crm-a's POSTs as the proxy saw them, with the worker that sent each.
    const aPosts: { rt: string; pid: number | undefined }[] = [];
    let lost: string | undefined;
    const proxy = await proxyTo(s.url, async (post) => {
      const pid = await pidOfPort(post.remotePort, workerPids);
      // The victim is about to be killed: its other refreshes (crm-b's, due at the same moments) are
      // answered 503 here, never forwarded, so that only crm-a's answer is lost with it.
      if (killed !== undefined && pid === killed) return { status: 503 };
      if (clientIdOf(post.headers) !== 'crm-a') return 'pass';
      const rt = hashOf(new URLSearchParams(post.body).get('refresh_token') ?? '');
      aPosts.push({ rt, pid });
      if (killed !== undefined || post.n === 0 || pid === undefined) return 'pass';
      killed = pid;
      lost = rt;
      return { holdAnswer: 4000 };
    });
    const all = ids(240);
    const f = await fleetOf(
      {
        request: { url: `${s.url}/items/{id}` },
        auth: {
          type: 'oauth2', grant: 'refresh_token', tokenUrl: `${proxy.url}/token`,
          clients: [
            { clientId: 'crm-a', clientSecret: 'secret-a', refreshToken: await s.mintRefreshToken('crm-a'), name: 'crm-a' },
            { clientId: 'crm-b', clientSecret: 'secret-b', refreshToken: await s.mintRefreshToken('crm-b'), name: 'crm-b' },
          ],
        },
        budget: { requests: 15, perSeconds: 1 },
        worker: { concurrency: 8, lockDurationMs: 3000 },
        enqueue: { batchSize: 20 },
      },
      all,
    );
    const ws = f.workers(2);
    workerPids = ws.map((w) => w.child.pid!);
    // The pull only enqueues and waits: a refresh it made could not be held (it is not to be killed), and
    // with every refresh a worker's the held one is crm-a's second.
    const pull = spawnCli(['pull', 'ids.txt', '--run', 'rt-kill-rotated', '--workers', '0'], { cwd: f.dir, env: f.env });
    const first = await Promise.race([proxy.held().then(() => 'held' as const), pull.done.then(() => 'pull ended' as const)]);
    expect(first).toBe('held');
    // A crm-b refresh the victim sent before it was picked may be answered (rotated) but not yet stored:
    // killed then, crm-b's answer would be lost too (and rightly quarantined). Kill once no refresh but crm-a's is in flight.
    const marks = queueKeys(f.queue).refreshState('*');
    for (let i = 0; i < 100; i++) {
      const inFlight = await Promise.all((await f.redis.keys(marks)).map((k) => f.redis.hexists(k, 'inflight')));
      if (inFlight.filter(Boolean).length <= 1) break;
      await sleep(20);
    }
    const victim = ws.find((w) => w.child.pid === killed)!;
    victim.child.kill('SIGKILL');
    const r = await pull.done;
    expect(r.code, r.stderr).toBe(0);
    expect(expectEveryIdOnce(f.dir, 'rt-kill-rotated', all).failed).toEqual([]);
    for (const w of ws) if (w !== victim) w.child.kill('SIGTERM');
    const logs = [r.stderr, ...(await Promise.all(ws.map((w) => w.done))).map((d) => d.stderr)].join('\n');
    expect(proxy.dropped).toBe(1);
    expect(logs.match(/the last token-endpoint answer was lost; sending the same refresh token once more/g)).toHaveLength(1);
    expect(logs.match(/credential crm-a quarantined \(refresh token refused \(invalid_grant\) after a lost token-endpoint answer \(the server had rotated it\): put a new auth\.clients\[0\]\.refreshToken in the config and restart\); the others carry on/g)).toHaveLength(1);
    expect(logs).not.toContain('credential crm-b quarantined');
    // crm-a: every refresh token sent once, but the one whose answer was lost: twice, the retry by
    // another replica, refused, and the last crm-a POST (quarantined: never a loop).
    const why = JSON.stringify(aPosts);
    expect(lost, why).toBeDefined();
    expect(aPosts.filter((p) => p.rt === lost), why).toHaveLength(2);
    expect(aPosts.at(-1)!.rt, why).toBe(lost);
    expect(aPosts.at(-1)!.pid, why).not.toBe(killed);
    expect(new Set(aPosts.map((p) => p.rt)).size, why).toBe(aPosts.length - 1);
    expect(s.counters.refreshReused).toBe(1);
    expect(s.counters.invalidGrants).toBe(1);
  }, 120_000);

  it.skipIf(onCluster())('a lost token-endpoint reply (the server rotated, the proxy cut the answer): the one quarantine line, the other client carries the run, no loop', async () => {
    const s = await oidc({ clients: [{ clientId: 'crm-a', clientSecret: 'secret-a' }, { clientId: 'crm-b', clientSecret: 'secret-b' }], accessTokenTtlS: 3 });
    let aPosts = 0;
    const proxy = await proxyTo(s.url, (post) => (clientIdOf(post.headers) === 'crm-a' && aPosts++ === 1 ? 'cut' : 'pass'));
    const all = ids(240);
    const f = await fleetOf(
      {
        request: { url: `${s.url}/items/{id}` },
        auth: {
          type: 'oauth2', grant: 'refresh_token', tokenUrl: `${proxy.url}/token`,
          clients: [
            { clientId: 'crm-a', clientSecret: 'secret-a', refreshToken: await s.mintRefreshToken('crm-a'), name: 'crm-a' },
            { clientId: 'crm-b', clientSecret: 'secret-b', refreshToken: await s.mintRefreshToken('crm-b'), name: 'crm-b' },
          ],
        },
        budget: { requests: 20, perSeconds: 1 },
        worker: { concurrency: 8 },
        enqueue: { batchSize: 20 },
      },
      all,
    );
    const ws = f.workers(2);
    const r = await runCli(['pull', 'ids.txt', '--run', 'rt-lost'], { cwd: f.dir, env: f.env });
    expect(r.code, r.stderr).toBe(0);
    expect(expectEveryIdOnce(f.dir, 'rt-lost', all).failed).toEqual([]);
    for (const w of ws) w.child.kill('SIGTERM');
    const logs = [r.stderr, ...(await Promise.all(ws.map((w) => w.done))).map((d) => d.stderr)].join('\n');
    expect(proxy.cut).toBe(1);
    expect(logs.match(/credential crm-a quarantined \(refresh token refused \(invalid_grant\) after a lost token-endpoint answer \(the server had rotated it\): put a new auth\.clients\[0\]\.refreshToken in the config and restart\); the others carry on/g)).toHaveLength(1);
    expect(logs).not.toContain('credential crm-b quarantined');
    // No loop: crm-a's token was sent once more after the lost answer, then never again.
    expect(aPosts).toBe(3);
    expect(s.counters.refreshReused).toBe(1);
    expect(s.counters.invalidGrants).toBe(1);
  }, 90_000);

  it.skipIf(onCluster())('a revoked grant (invalid_grant): the one quarantine line that says to run pullq login, the other client carries the run', async () => {
    const s = await oidc({ clients: [{ clientId: 'crm-a', clientSecret: 'secret-a' }, { clientId: 'crm-b', clientSecret: 'secret-b' }], accessTokenTtlS: 3 });
    const startA = await s.mintRefreshToken('crm-a');
    const all = ids(200);
    const f = await fleetOf(
      {
        request: { url: `${s.url}/items/{id}` },
        auth: {
          type: 'oauth2', grant: 'refresh_token', tokenUrl: s.tokenUrl,
          clients: [
            { clientId: 'crm-a', clientSecret: 'secret-a', refreshToken: startA, name: 'crm-a' },
            { clientId: 'crm-b', clientSecret: 'secret-b', refreshToken: await s.mintRefreshToken('crm-b'), name: 'crm-b' },
          ],
        },
        budget: { requests: 20, perSeconds: 1 },
        worker: { concurrency: 8 },
        enqueue: { batchSize: 20 },
      },
      all,
    );
    const ws = f.workers(2);
    const pull = spawnCli(['pull', 'ids.txt', '--run', 'rt-revoked'], { cwd: f.dir, env: f.env });
    while (s.counters.apiOk < 20) await sleep(50);
    await s.revokeGrantOf(startA);
    const r = await pull.done;
    expect(r.code, r.stderr).toBe(0);
    expect(expectEveryIdOnce(f.dir, 'rt-revoked', all).failed).toEqual([]);
    for (const w of ws) w.child.kill('SIGTERM');
    const logs = [r.stderr, ...(await Promise.all(ws.map((w) => w.done))).map((d) => d.stderr)].join('\n');
    expect(logs.match(/credential crm-a quarantined \(refresh token refused \(invalid_grant\): put a new auth\.clients\[0\]\.refreshToken in the config and restart\); the others carry on/g)).toHaveLength(1);
    expect(logs).not.toContain('credential crm-b quarantined');
    expect(s.counters.invalidGrants).toBe(1);
    expect(s.counters.refreshReused).toBe(0);
  }, 90_000);
});
