import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from './helpers/cli.js';
import { expectEveryIdOnce, fleetFixture } from './helpers/fleet-fixture.js';
import { startLoginApi, type LoginApi, type LoginApiOptions } from './helpers/login-api.js';
import { onCluster } from './helpers/test-env.js';

// Auth type "login" (issue #20) against a real login API (test/helpers/login-api.ts, express 5): whole pulls
// through the CLI, with worker processes, tokens that die after 3 s, after N requests (401 only), JWTs
// whose exp is all that tells their lifetime, form bodies and a wrong password. The cluster project runs
// the fleet case only (the others go through the same keys and scripts).

let api: LoginApi | undefined;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
  await api?.close();
  api = undefined;
});

const ids = (n: number, p = 'id') => Array.from({ length: n }, (_, i) => `${p}-${i}`);

const PASSWORDS = { 'a@example.com': 'pw-a "quoted" & {username}', 'b@example.com': 'pw-b+é' };

async function setup(apiOptions: LoginApiOptions, auth: (url: string) => Record<string, unknown>, all: string[], extra: Record<string, unknown> = {}) {
  api = await startLoginApi({ latencyMs: 3, ...apiOptions });
  const url = api.url;
  const config = {
    request: { url: `${url}/items/{id}` },
    auth: { type: 'login', loginUrl: `${url}/login`, ...auth(url) },
    worker: { concurrency: 8 },
    enqueue: { batchSize: 20 },
    ...extra,
  };
  return fleetFixture({ label: 'login', config, ids: all, env: { PW_A: PASSWORDS['a@example.com'], PW_B: PASSWORDS['b@example.com'] }, cleanups });
}

const accounts = [
  { username: 'a@example.com', password: '${PW_A}', name: 'acct-a' },
  { username: 'b@example.com', password: '${PW_B}', name: 'acct-b' },
];

describe('auth type login', () => {
  it('2 worker processes + pull, 2 accounts, tokens that live 3 s: every ID once, about one login per account per lifetime for the whole fleet', async () => {
    const all = ids(onCluster() ? 80 : 300);
    const f = await setup(
      { accounts: PASSWORDS, lifetime: { type: 'expires_in', seconds: 3 } },
      () => ({ tokenPath: 'token', expiresInPath: 'expires_in', accounts }),
      all,
      { budget: { requests: 15, perSeconds: 1 } },
    );
    f.workers(2);
    const started = Date.now();
    const r = await runCli(['pull', 'ids.txt', '--run', 'fleet'], { cwd: f.dir, env: f.env });
    const seconds = (Date.now() - started) / 1000;
    expect(r.code, r.stderr).toBe(0);
    expect(expectEveryIdOnce(f.dir, 'fleet', all).failed).toEqual([]);
    const logins = Object.fromEntries(api!.logins);
    console.log(`login: ${JSON.stringify(logins)} logins in ${seconds.toFixed(1)} s (token lifetime 3 s, refreshed at 2.4 s; 3 processes), ${api!.unauthorized} 401s`);
    // Refreshed at 80 % of 3 s: about seconds / 2.4 + 1 per account, however many replicas there are.
    for (const user of Object.keys(PASSWORDS)) {
      expect(api!.logins.get(user)).toBeGreaterThanOrEqual(1);
      expect(api!.logins.get(user)).toBeLessThanOrEqual(Math.ceil(seconds / 2.4) + 2);
    }
    expect(api!.unauthorized).toBeLessThanOrEqual(2);
    expect(r.stderr).not.toContain('quarantined');
  });

  it.skipIf(onCluster())('a wrong password quarantines that account with one line; the other carries the run, exit 0', async () => {
    const all = ids(60);
    const f = await setup(
      { accounts: { 'a@example.com': PASSWORDS['a@example.com'] }, lifetime: { type: 'expires_in', seconds: 60 } },
      () => ({ expiresInPath: 'expires_in', accounts }),
      all,
    );
    const r = await runCli(['pull', 'ids.txt', '--run', 'wrong'], { cwd: f.dir, env: f.env });
    expect(r.code, r.stderr).toBe(0);
    expect(expectEveryIdOnce(f.dir, 'wrong', all).failed).toEqual([]);
    const lines = r.stderr.split('\n').filter((l) => l.includes('quarantined'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('credential acct-b quarantined (login refused (HTTP 401): check its username and password); the others carry on');
    expect(api!.refusedLogins).toBe(1);
    expect(api!.served.get('a@example.com')).toBe(all.length);
    expect(r.stdout + r.stderr).not.toContain('pw-b');
  });

  it.skipIf(onCluster())('no lifetime given, tokens die after 40 requests (401): one new login for the fleet after each, no ID fails', async () => {
    const all = ids(200);
    const f = await setup(
      { accounts: { 'a@example.com': PASSWORDS['a@example.com'] }, lifetime: { type: 'requests', n: 40 } },
      () => ({ accounts: [accounts[0]] }),
      all,
    );
    f.workers(1);
    const r = await runCli(['pull', 'ids.txt', '--run', 'by401'], { cwd: f.dir, env: f.env });
    expect(r.code, r.stderr).toBe(0);
    expect(expectEveryIdOnce(f.dir, 'by401', all).failed).toEqual([]);
    const logins = api!.logins.get('a@example.com')!;
    console.log(`login, expiry by 401 only: ${logins} logins for ${api!.served.get('a@example.com')} requests served (40 per token), ${api!.unauthorized} 401s`);
    // 200 IDs at 40 requests a token: at least 5 tokens; a dead token is replaced once for the fleet, not once per replica.
    expect(logins).toBeGreaterThanOrEqual(Math.ceil(all.length / 40));
    expect(logins).toBeLessThanOrEqual(Math.ceil(all.length / 40) + 2);
    expect(r.stderr).not.toContain('quarantined');
  });

  it.skipIf(onCluster())('form: true, other field names: the body goes as application/x-www-form-urlencoded', async () => {
    const all = ids(40);
    const f = await setup(
      { accounts: PASSWORDS, fields: { username: 'email', password: 'pass' }, lifetime: { type: 'expires_in', seconds: 60 } },
      () => ({ form: true, body: { email: '{username}', pass: '{password}', remember: true }, expiresInPath: 'expires_in', accounts }),
      all,
    );
    const r = await runCli(['pull', 'ids.txt', '--run', 'form'], { cwd: f.dir, env: f.env });
    expect(r.code, r.stderr).toBe(0);
    expect(expectEveryIdOnce(f.dir, 'form', all).failed).toEqual([]);
    expect([...api!.loginContentTypes]).toEqual(['application/x-www-form-urlencoded']);
    expect(api!.logins.get('a@example.com')).toBe(1);
    expect(api!.logins.get('b@example.com')).toBe(1);
    expect(api!.refusedLogins).toBe(0);
  });

  it.skipIf(onCluster())('a JWT whose exp is the only lifetime, at a dot path (session.jwt): refreshed before it expires', async () => {
    const all = ids(120);
    const f = await setup(
      { accounts: PASSWORDS, lifetime: { type: 'jwt', seconds: 3 } },
      () => ({ body: { username: '{username}', password: '{password}' }, tokenPath: 'session.jwt', accounts }),
      all,
      { budget: { requests: 15, perSeconds: 1 } },
    );
    const started = Date.now();
    const r = await runCli(['pull', 'ids.txt', '--run', 'jwt'], { cwd: f.dir, env: f.env });
    const seconds = (Date.now() - started) / 1000;
    expect(r.code, r.stderr).toBe(0);
    expect(expectEveryIdOnce(f.dir, 'jwt', all).failed).toEqual([]);
    console.log(`login, JWT exp: ${JSON.stringify(Object.fromEntries(api!.logins))} logins in ${seconds.toFixed(1)} s, ${api!.unauthorized} 401s`);
    expect([...api!.loginContentTypes]).toEqual(['application/json']);
    // exp has whole seconds: a token lives 2-3 s, refreshed at 80 % of what is left when it arrives.
    for (const user of Object.keys(PASSWORDS)) {
      expect(api!.logins.get(user)).toBeGreaterThanOrEqual(2);
      expect(api!.logins.get(user)).toBeLessThanOrEqual(Math.ceil(seconds / 1.6) + 2);
    }
    expect(api!.unauthorized).toBeLessThanOrEqual(2);
  });
});
