import { existsSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { credentialKey } from '../src/auth/credential-key.js';
import { fingerprint } from '../src/auth/credential.js';
import { RefreshTokenStore } from '../src/auth/refresh-token-store.js';
import { queueKeys } from '../src/redis/keys.js';
import { createPullq } from '../src/api/create-pullq.js';
import { loadConfig } from '../src/config.js';
import { runCli, spawnCli, type CliResult } from './helpers/cli.js';
import { startOidcServer, type OidcServer } from './helpers/oidc-server.js';
import { readOutput } from './helpers/pull-in-process.js';
import { newRedis, onCluster, quietLogger, redisUrl, tearDown, tempDir, uniqueQueue } from './helpers/test-env.js';

// `pullq login` (issue #20, OAuth2 authorization code with PKCE) against the certified oidc-provider,
// its own login and consent pages driven in Debian's Chromium (playwright-core): the spawned CLI prints
// the URL, the browser logs in and consents, the provider redirects to pullq's loopback callback, and
// pullq stores the refresh token for the fleet. Then what the fleet does with it, and the answers that
// must fail: a wrong state, access_denied, no answer in time.
// The cluster project runs only the fleet's pull (it logs in first when no earlier case did): the other
// cases go through the same keys and the same code on one Redis.

const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.warn(`oauth2-login.test.ts skipped: no ${CHROMIUM} (apt-get install -y chromium; .ci/run installs it)`);

const SECRET = 'login-conf-secret-7c1e94d2';
const queue = uniqueQueue('login');
const tmp = tempDir('login');
const redis = newRedis();
let oidc: OidcServer;
let browser: Browser | undefined;
let port: number;
/** code_challenge_method of each authorization request the provider accepted. */
const challengeMethods: unknown[] = [];

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return p;
}

beforeAll(async () => {
  port = await freePort();
  const redirectUris = [`http://127.0.0.1:${port}/callback`];
  oidc = await startOidcServer({
    clients: [
      { clientId: 'pullq-public', redirectUris },
      { clientId: 'pullq-conf', clientSecret: SECRET, redirectUris },
    ],
    // Access tokens live 3 s (oidc-provider counts whole seconds: 2 to 3 s): several refreshes per run.
    accessTokenTtlS: 3,
  });
  oidc.provider.on('authorization.accepted', (ctx) => {
    challengeMethods.push((ctx as { oidc: { params: Record<string, unknown> } }).oidc.params['code_challenge_method']);
  });
  if (hasChromium) browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
});

afterAll(async () => {
  await browser?.close();
  redis.disconnect();
  await tearDown({ api: oidc, queue, tmp });
});

function writeConfig(file: string, auth: Record<string, unknown>, extra: Record<string, unknown> = {}): string {
  const p = path.join(tmp.dir, file);
  writeFileSync(
    p,
    JSON.stringify({
      queue,
      request: { url: `${oidc.url}/items/{id}` },
      auth: { type: 'oauth2', grant: 'authorization_code', tokenUrl: oidc.tokenUrl, authorizeUrl: oidc.authorizeUrl, redirectPort: port, scope: 'openid read', ...auth },
      retry: { baseDelayMs: 50, maxDelayMs: 500 },
      sink: { type: 'file', dir: path.join(tmp.dir, 'out') },
      ...extra,
    }),
  );
  return p;
}

const CLIENTS = [{ clientId: 'pullq-public', name: 'public' }, { clientId: 'pullq-conf', clientSecret: SECRET, name: 'conf' }];
let configFile: string;
beforeAll(() => {
  configFile = writeConfig('pullq.config.json', { clients: CLIENTS });
});

/** `pullq login` spawned, and the authorization URL it printed (once it listens). */
async function startLogin(args: string[], env: Record<string, string> = {}): Promise<{ url: string; done: Promise<CliResult>; out: () => string }> {
  const { child, done } = spawnCli(['login', '--config', configFile, ...args], { env: { REDIS_URL: redisUrl(), ...env } });
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^\s+(http\S+)$/m.exec(out);
      if (m && /waiting for the redirect/.test(out)) resolve(m[1]!);
    });
    void done.then((r) => reject(new Error(`pullq login ended (${r.code}) before printing a URL: ${r.stdout}${r.stderr}`)));
  });
  return { url, done, out: () => out };
}

/** Logs in on oidc-provider's devInteractions pages: any login, any password; then consent (or cancel it). */
async function driveBrowser(url: string, opts: { cancelAtConsent?: boolean } = {}): Promise<Page> {
  const context = await browser!.newContext();
  // The provider's pages @import a web font: nothing leaves this machine.
  await context.route(/^https?:\/\/(?!127\.0\.0\.1[:/])/, (route) => route.abort());
  const page = await context.newPage();
  await page.goto(url);
  await page.fill('input[name="login"]', 'user-1');
  await page.fill('input[name="password"]', 'any-password');
  await Promise.all([page.waitForURL(/\/interaction\//), page.click('button[type="submit"]')]);
  if (opts.cancelAtConsent) {
    await Promise.all([page.waitForURL(/127\.0\.0\.1:\d+\/callback/), page.click('text=[ Cancel ]')]);
  } else {
    await page.waitForSelector('button:has-text("Continue")');
    await Promise.all([page.waitForURL(/127\.0\.0\.1:\d+\/callback/), page.click('button:has-text("Continue")')]);
  }
  return page;
}

/** The credential id the fleet keeps a client's state under. */
async function idOf(c: { clientId: string; clientSecret?: string }): Promise<string> {
  return `fp-${fingerprint(c.clientSecret ?? '', c.clientId, await credentialKey(redis, queue))}`;
}

/** The refresh token pullq stored for a client, opened as the worker side opens it. */
async function storedRefreshToken(c: { clientId: string; clientSecret?: string }): Promise<string | undefined> {
  const key = await credentialKey(redis, queue);
  return new RefreshTokenStore(redis, queue, await idOf(c), c.clientSecret || key.toString('base64'), c.clientId).read();
}

/** A whole `pullq login --client NAME` in the browser; its result. */
async function loginInBrowser(name: string): Promise<CliResult> {
  const login = await startLogin(['--client', name]);
  const page = await driveBrowser(login.url);
  const r = await login.done;
  await page.context().close();
  return r;
}

describe.skipIf(!hasChromium)('pullq login in Chromium against oidc-provider', () => {
  it.skipIf(onCluster()).each([
    ['a public client (no secret, PKCE only)', CLIENTS[0]!],
    ['a confidential client (client_secret_basic)', CLIENTS[1]!],
  ])('%s: logged in, exit 0, the stored refresh token works at the provider', async (_, client) => {
    const before = challengeMethods.length;
    const login = await startLogin(['--client', client.name]);
    const authorize = new URL(login.url);
    expect(authorize.origin + authorize.pathname).toBe(oidc.authorizeUrl);
    expect(authorize.searchParams.get('code_challenge_method')).toBe('S256');
    expect(authorize.searchParams.get('redirect_uri')).toBe(`http://127.0.0.1:${port}/callback`);
    expect(authorize.searchParams.get('scope')).toBe('openid read offline_access');
    const page = await driveBrowser(login.url);
    const r = await login.done;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n').at(-1)).toBe(`logged in: ${client.name}`);
    expect(await page.textContent('h1')).toBe(`Logged in: ${client.name}`);
    await page.context().close();
    // The provider accepted the request with PKCE S256 ...
    expect(challengeMethods.slice(before)).toEqual(['S256']);
    // ... and it requires PKCE: the same request without a challenge is refused.
    const bare = new URL(login.url);
    bare.searchParams.delete('code_challenge');
    bare.searchParams.delete('code_challenge_method');
    const refused = new URL((await fetch(bare, { redirect: 'manual' })).headers.get('location') ?? '', oidc.url);
    expect([refused.searchParams.get('error'), refused.searchParams.get('error_description')]).toEqual(['invalid_request', expect.stringMatching(/requires PKCE/)]);
    const rt = await storedRefreshToken(client);
    expect(rt).toBeTruthy();
    expect(await oidc.refreshTokenUsable(rt!)).toBe(true);
    // Sealed in Redis: the raw value is not the token.
    const raw = await redis.get(queueKeys(queue).refreshToken(`fp-${fingerprint(client.clientSecret ?? '', client.clientId, await credentialKey(redis, queue))}`));
    expect(raw).not.toContain(rt!);
  });

  it.skipIf(onCluster())('a callback with a state that is not the login\'s: exit 1, one line, nothing stored', async () => {
    const login = await startLogin(['--client', 'public']);
    const before = await storedRefreshToken(CLIENTS[0]!);
    const res = await fetch(`http://127.0.0.1:${port}/callback?code=forged-code&state=not-the-state&iss=${encodeURIComponent(oidc.issuer)}`);
    expect(res.status).toBe(400);
    const r = await login.done;
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^pullq: login of client public: the answer's state is not this login's/);
    expect(r.stderr).not.toContain('forged-code');
    expect(await storedRefreshToken(CLIENTS[0]!)).toBe(before);
  });

  it.skipIf(onCluster())('access_denied (the user cancels at the provider): exit 1, one line naming the error', async () => {
    const login = await startLogin(['--client', 'conf']);
    const page = await driveBrowser(login.url, { cancelAtConsent: true });
    const r = await login.done;
    expect(await page.textContent('h1')).toBe('Login failed');
    await page.context().close();
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^pullq: login of client conf refused by the authorization server \(access_denied: End-User aborted interaction\); nothing stored$/)]);
  });
});

describe.skipIf(!hasChromium)('the fleet pulls with what pullq login stored', () => {
  // Shorter on the cluster project, whose one case this is.
  const ids = Array.from({ length: onCluster() ? 120 : 300 }, (_, i) => `login-${i}`);
  beforeAll(() => writeFileSync(path.join(tmp.dir, 'ids.txt'), `${ids.join('\n')}\n`));

  function expectEveryIdOnce(run: string) {
    const out = readOutput(path.join(tmp.dir, 'out'), run);
    expect(out.failed).toEqual([]);
    expect(out.results.map((r) => r.id).sort()).toEqual([...ids].sort());
  }

  const fleetEnv = () => ({ REDIS_URL: redisUrl(), PULLQ_LOG_LEVEL: 'warn' });
  const fleetConfig = () => writeConfig('fleet.json', { clients: CLIENTS.map((c) => ({ ...c, budget: { requests: 25, perSeconds: 1 } })) }, { worker: { concurrency: 4 }, enqueue: { batchSize: 20 } });

  /** 2 worker processes; stop() ends them and gives their output. */
  function startWorkers(config: string) {
    const ws = [0, 1].map(() => spawnCli(['worker', '--config', config], { env: fleetEnv() }));
    return {
      async stop(): Promise<string> {
        for (const w of ws) w.child.kill('SIGTERM');
        return (await Promise.all(ws.map((w) => w.done))).map((x) => `${x.stdout}${x.stderr}`).join('\n');
      },
    };
  }

  /** pull beside the workers; access tokens live 3 s, the run 6 s at 25 req/s per client (12 s on one). */
  const pullRun = (config: string, run: string) => runCli(['pull', path.join(tmp.dir, 'ids.txt'), '--run', run, '--config', config], { env: fleetEnv() });

  async function fleetPull(run: string): Promise<CliResult & { all: string }> {
    const config = fleetConfig();
    const workers = startWorkers(config);
    const pull = await pullRun(config, run);
    return { ...pull, all: `${pull.stdout}${pull.stderr}\n${await workers.stop()}` };
  }

  it('pull + 2 workers, a public and a confidential client logged in, rotation on: every ID once, no invalid_grant, no refresh token sent twice', { timeout: 90_000 }, async () => {
    for (const c of CLIENTS) if (!(await storedRefreshToken(c))) expect((await loginInBrowser(c.name)).code).toBe(0);
    const before = { ...oidc.counters.tokenCalls };
    const started = Date.now();
    const r = await fleetPull('fleet');
    const seconds = (Date.now() - started) / 1000;
    expect(r.code, r.stderr).toBe(0);
    expectEveryIdOnce('fleet');
    expect(oidc.counters.invalidGrants).toBe(0);
    expect(oidc.counters.refreshReused).toBe(0);
    // Tokens live 3 s: a few refreshes per client for the run, not one per request or replica.
    const refreshes = (oidc.counters.tokenCalls['refresh_token'] ?? 0) - (before['refresh_token'] ?? 0);
    console.info(`pull + 2 workers on logged-in clients: ${ids.length} IDs in ${seconds.toFixed(1)} s, ${refreshes} refresh_token calls for 2 clients (access tokens of 3 s)`);
    expect(refreshes).toBeGreaterThanOrEqual(2);
    expect(refreshes).toBeLessThan(20);
  });

  it.skipIf(onCluster())('a client whose grant was revoked is quarantined with "run pullq login"; pullq login lifts it and the running workers use it again', { timeout: 90_000 }, async () => {
    const conf = CLIENTS[1]!;
    for (const c of CLIENTS) if (!(await storedRefreshToken(c))) expect((await loginInBrowser(c.name)).code).toBe(0);
    await oidc.revokeGrantOf((await storedRefreshToken(conf))!);
    // Its cached access token is revoked too: the next refresh is refused.
    await redis.del(queueKeys(queue).oauth(await idOf(conf)));
    const credKey = queueKeys(queue).cred(await idOf(conf));
    const config = fleetConfig();
    // The same two workers through both runs: a login needs no restart.
    const workers = startWorkers(config);
    let out = '';
    try {
      const r1 = await pullRun(config, 'revoked');
      out += `${r1.stdout}${r1.stderr}`;
      expect(r1.code, r1.stderr).toBe(0);
      expectEveryIdOnce('revoked');
      expect(await redis.hget(credKey, 'qUntil')).not.toBeNull();

      expect((await loginInBrowser(conf.name)).code).toBe(0);
      expect(await redis.hget(credKey, 'qUntil')).toBeNull();
      const grantsBefore = oidc.counters.invalidGrants;
      const requestsBefore = Number(await redis.hget(credKey, 'requests'));
      const r2 = await pullRun(config, 'after-login');
      out += `${r2.stdout}${r2.stderr}`;
      expect(r2.code, r2.stderr).toBe(0);
      expectEveryIdOnce('after-login');
      expect(oidc.counters.invalidGrants).toBe(grantsBefore);
      // conf carried a share of the second run (its budget is half the fleet's).
      expect(Number(await redis.hget(credKey, 'requests')) - requestsBefore).toBeGreaterThan(ids.length / 4);
    } finally {
      out += await workers.stop();
    }
    // One quarantine line, in whichever process hit the refusal; none after the login.
    expect(out.match(/credential conf quarantined \(refresh token refused \(invalid_grant\): run pullq login --client conf\); the others carry on/g)?.length).toBe(1);
    expect(oidc.counters.invalidGrants).toBe(1);
  });
});

describe.skipIf(onCluster())('pullq login without a browser', () => {
  it('no answer in time: exit 2 with one line (the time-out injected for tests)', async () => {
    const login = await startLogin(['--client', 'pullq-conf'], { PULLQ_LOGIN_TIMEOUT_MS: '1500' });
    expect(login.out()).toMatch(/\(up to 2s\)/);
    const r = await login.done;
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual([`pullq: login of client conf: no answer on http://127.0.0.1:${port}/callback within 2 s; nothing stored, run pullq login again`]);
  });

  it('the redirect port taken: exit 1, one line saying what to change', async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(port, '127.0.0.1', r));
    try {
      const r = await runCli(['login', '--config', configFile, '--client', 'public'], { env: { REDIS_URL: redisUrl() } });
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split('\n')).toEqual([`pullq: pullq login: port ${port} is in use; free it, or set auth.redirectPort and register http://127.0.0.1:<port>/callback at the IdP`]);
    } finally {
      await new Promise((r) => taken.close(r));
    }
  });

  it('the library call: onUrl gets the URL, an error answer rejects with LoginError (login_refused), an aborted signal too', async () => {
    const pullq = createPullq(loadConfig(configFile, { redisUrl: redisUrl(), vars: {} }), { logger: quietLogger() });
    try {
      let url = '';
      const refused = pullq.login({ client: 'conf', onUrl: (u) => void (url = u) });
      const settled = refused.catch((err: unknown) => err);
      await expect.poll(() => url).not.toBe('');
      const state = new URL(url).searchParams.get('state')!;
      await fetch(`http://127.0.0.1:${port}/callback?error=access_denied&state=${state}&iss=${encodeURIComponent(oidc.issuer)}`);
      expect(await settled).toMatchObject({ name: 'LoginError', code: 'login_refused' });
      const stop = new AbortController();
      const aborted = pullq.login({ client: 'conf', onUrl: () => stop.abort(), signal: stop.signal });
      await expect(aborted).rejects.toMatchObject({ name: 'LoginError', code: 'login_aborted', message: 'login of client conf: stopped before an answer came; nothing stored' });
    } finally {
      await pullq.close();
    }
  });

  it('a config pullq login cannot serve, an unknown client, several clients and no --client: exit 1, one line', async () => {
    const cc = writeConfig('cc.json', { grant: 'client_credentials', clients: [{ clientId: 'pullq-conf', clientSecret: SECRET }] });
    const cases: [string[], RegExp][] = [
      [['--config', cc], /^pullq: pullq login needs auth.grant "authorization_code"; this config has grant "client_credentials"/],
      [['--client', 'nobody'], /^pullq: pullq login: no client "nobody" in the config; --client takes a name or clientId \(public, conf\)$/],
      [[], /^pullq: pullq login: the config has 2 clients; pick one with --client \(public, conf\)$/],
    ];
    for (const [args, line] of cases) {
      const { done } = spawnCli(['login', '--config', configFile, ...args], { env: { REDIS_URL: redisUrl() } });
      const r = await done;
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(line)]);
    }
  });
});
