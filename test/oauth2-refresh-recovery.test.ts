import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from './helpers/cli.js';
import { startOidcServer, type OidcServer } from './helpers/oidc-server.js';
import { readOutput } from './helpers/pull-in-process.js';
import { RefreshTokenStore } from '../src/auth/refresh-token-store.js';
import { refreshGrant } from '../src/auth/kinds/oauth2-refresh-grant.js';
import type { OAuth2Auth } from '../src/auth/kinds/kind-context.js';
import type { CredentialConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { queueKeys } from '../src/redis/keys.js';
import { RefreshScripts } from '../src/redis/refresh-scripts.js';
import { cleanQueue, newRedis, tempDir, uniqueQueue, redisUrl } from './helpers/test-env.js';

// grant refresh_token recovers from a refusal by a new refresh token in the config (no `pullq login`: that is
// the authorization_code grant's): the quarantine line says so, and a restart with the new token lifts it.

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

const ids = (n: number, p: string) => Array.from({ length: n }, (_, i) => `${p}-${i}`);

describe('grant refresh_token: a refused client recovers from a new refreshToken in the config', () => {
  it('quarantined by invalid_grant with the line that says to put a new refreshToken in the config; a new one and a new pull: it works again', async () => {
    const s: OidcServer = await startOidcServer({ clients: [{ clientId: 'crm-a', clientSecret: 'secret-a' }, { clientId: 'crm-b', clientSecret: 'secret-b' }], accessTokenTtlS: 30 });
    cleanups.push(() => s.close());
    const tmp = tempDir('rt-recover');
    const queue = uniqueQueue('rtr');
    const redis = newRedis();
    cleanups.push(async () => {
      await cleanQueue(redis, queue);
      redis.disconnect();
      tmp.remove();
    });
    const startA = await s.mintRefreshToken('crm-a');
    const startB = await s.mintRefreshToken('crm-b');
    await s.revokeGrantOf(startA);
    const configOf = (rtA: string) =>
      JSON.stringify({
        queue,
        sink: { type: 'file', dir: './out' },
        request: { url: `${s.url}/items/{id}` },
        auth: {
          type: 'oauth2', grant: 'refresh_token', tokenUrl: s.tokenUrl,
          clients: [
            { clientId: 'crm-a', clientSecret: 'secret-a', refreshToken: rtA, name: 'crm-a' },
            { clientId: 'crm-b', clientSecret: 'secret-b', refreshToken: startB, name: 'crm-b' },
          ],
        },
        worker: { concurrency: 4 },
        enqueue: { batchSize: 10 },
      });
    const env = { REDIS_URL: redisUrl(), PULLQ_LOG_LEVEL: 'warn' };
    writeFileSync(path.join(tmp.dir, 'pullq.config.json'), configOf(startA));
    writeFileSync(path.join(tmp.dir, 'ids.txt'), `${ids(40, 'one').join('\n')}\n`);
    const first = await runCli(['pull', 'ids.txt', '--run', 'one'], { cwd: tmp.dir, env });
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toContain('credential crm-a quarantined (refresh token refused (invalid_grant): put a new auth.clients[0].refreshToken in the config and restart); the others carry on');
    expect(first.stderr).not.toContain('pullq login');
    const stateOf = async (name: string) => ((JSON.parse((await runCli(['credentials', '--json'], { cwd: tmp.dir, env })).stdout) as { credentials: { name: string; state: string }[] }).credentials.find((c) => c.name === name)?.state);
    expect(await stateOf('crm-a')).toBe('quarantined');

    // The user's fix: a new refresh token for crm-a in the config, and a restart (a new pull).
    const freshA = await s.mintRefreshToken('crm-a');
    writeFileSync(path.join(tmp.dir, 'pullq.config.json'), configOf(freshA));
    writeFileSync(path.join(tmp.dir, 'ids.txt'), `${ids(40, 'two').join('\n')}\n`);
    const refreshesBefore = s.counters.tokenCalls['refresh_token'] ?? 0;
    const second = await runCli(['pull', 'ids.txt', '--run', 'two'], { cwd: tmp.dir, env });
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).not.toContain('quarantined');
    // crm-a sent the new token (the provider rotated it: consumed) and is in the pool again.
    expect(await s.refreshTokenUsable(freshA)).toBe(false);
    expect((s.counters.tokenCalls['refresh_token'] ?? 0) - refreshesBefore).toBeGreaterThanOrEqual(1);
    expect(await stateOf('crm-a')).toBe('ok');
    const out = readOutput(path.join(tmp.dir, 'out'), 'two');
    expect(out.results.map((r) => r.id).sort()).toEqual(ids(40, 'two').sort());
  }, 60_000);
});

describe('a rotated refresh token whose commit is fenced out', () => {
  it('the lock expired before the store: one clear line, the access token kept here, nothing stored; the next refresh sends the old token once more (a lost answer)', async () => {
    const s: OidcServer = await startOidcServer({ clients: [{ clientId: 'crm', clientSecret: 'crm-secret' }], accessTokenTtlS: 30 });
    cleanups.push(() => s.close());
    const queue = uniqueQueue('rtc');
    const redis = newRedis();
    cleanups.push(async () => {
      await cleanQueue(redis, queue);
      redis.disconnect();
    });
    const lines: string[] = [];
    const logger = createLogger('warn', 'human', { write: (l: string) => void lines.push(l) });
    const start = await s.mintRefreshToken('crm');
    const auth = { type: 'oauth2', grant: 'refresh_token', tokenUrl: s.tokenUrl } as unknown as OAuth2Auth;
    const c = { kind: 'oauth2', user: 'crm', secret: 'crm-secret', source: 'config', authMethod: 'client_secret_basic', refreshToken: start, name: 'crm' } as CredentialConfig;
    const store = new RefreshTokenStore(redis, queue, 'fp-commit', 'crm-secret', 'crm');
    const fetch = refreshGrant({ auth, c, label: 'crm', index: 0, store, scripts: new RefreshScripts(redis, queue, 'fp-commit'), logger, seen: new Set() });
    const lockKey = queueKeys(queue).oauthLock('fp-commit');
    await redis.set(lockKey, 'me', 'PX', 15_000);
    const got = await fetch({ key: lockKey, owner: 'me', extend: async (ms) => (await redis.set(lockKey, 'me', 'PX', ms)) === 'OK' });
    expect(got.token).toBeTruthy();
    // The lock expires and another replica takes it before this one stores the answer.
    await redis.set(lockKey, 'someone-else', 'PX', 15_000);
    expect(await got.commit!('sealed-access', 10_000)).toBe(false);
    expect(lines.filter((l) => l.includes('the refresh lock expired before the rotated refresh token was stored'))).toHaveLength(1);
    expect(lines.join('\n')).toContain('put a new auth.clients[0].refreshToken in the config and restart');
    const st = await store.state();
    expect(st.token).toBe(start);
    expect(st.inflight).toBe(st.sealed);
    expect(await redis.get(queueKeys(queue).oauth('fp-commit'))).toBeNull();
  });
});
