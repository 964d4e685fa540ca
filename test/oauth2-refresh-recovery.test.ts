import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from './helpers/cli.js';
import { startOidcServer, type OidcServer } from './helpers/oidc-server.js';
import { readOutput } from './helpers/pull-in-process.js';
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
