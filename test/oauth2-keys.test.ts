import { generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import * as oauth from 'oauth4webapi';
import { decodeJwt, decodeProtectedHeader, exportJWK, jwtVerify, SignJWT } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { startExampleApi } from '../scripts/example-api-server.js';
import { FleetTokenSource } from '../src/auth/fleet-token-source.js';
import { importPrivateKey, TOKEN_TIMEOUT_MS } from '../src/auth/kinds/oauth2-client-auth.js';
import { ASSERTION_LIFETIME_S, assertionClaims } from '../src/auth/kinds/oauth2-jwt-bearer-grant.js';
import { tokenFailureOf, type TokenFailure } from '../src/auth/kinds/oauth2-token-errors.js';
import { ConfigError } from '../src/errors.js';
import { runCli, spawnCli } from './helpers/cli.js';
import { startKeysProvider, testKey, type KeysProvider } from './helpers/oidc-keys-provider.js';
import { pullInProcess, readOutput } from './helpers/pull-in-process.js';
import { cleanQueue, newRedis, onCluster, quietLogger, redisUrl, tempDir, testConfig, uniqueQueue } from './helpers/test-env.js';

// Issue #20: private_key_jwt client authentication (RFC 7523 §2.2) and the JWT-bearer grant (§2.1), against the
// certified oidc-provider; the token-endpoint failure table; the key importer. The cluster project runs the
// private_key_jwt pull (PEM and JWK keys, a fleet of 2); the rest only repeats what one Redis covers.

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

// ---------------------------------------------------------------------------------------------------------------
describe('what a failed token-endpoint call means (tokenFailureOf)', () => {
  const as: oauth.AuthorizationServer = { issuer: 'https://idp.example', token_endpoint: 'https://idp.example/token' };
  const client: oauth.Client = { client_id: 'c1' };
  /** The error oauth4webapi throws for this answer (processClientCredentialsResponse, as the grant calls it). */
  const errorFor = async (status: number, body: string, headers: Record<string, string> = { 'content-type': 'application/json' }) => {
    try {
      await oauth.processClientCredentialsResponse(as, client, new Response(body, { status, headers }));
    } catch (err) {
      return err;
    }
    throw new Error('no error');
  };
  const json = (o: unknown) => JSON.stringify(o);
  const refused = (reason: string): TokenFailure => ({ kind: 'refused', reason });
  const later = (detail: string): TokenFailure => ({ kind: 'unavailable', detail });

  it.each<[string, number, string, Record<string, string> | undefined, TokenFailure]>([
    ['invalid_client', 401, json({ error: 'invalid_client', error_description: 'SECRET-IN-DESCRIPTION' }), undefined, refused('token endpoint refused the client: invalid_client; check its client id and its secret or key')],
    ['invalid_grant', 400, json({ error: 'invalid_grant' }), undefined, refused('token endpoint refused the grant: invalid_grant; check its key, subject and the audience')],
    ['unauthorized_client', 400, json({ error: 'unauthorized_client' }), undefined, refused('token endpoint refused the client: unauthorized_client; the server does not let this client use this grant')],
    ['invalid_scope', 400, json({ error: 'invalid_scope' }), undefined, refused('token endpoint refused the scope: invalid_scope; check auth.scope')],
    ['another code', 400, json({ error: 'unsupported_grant_type' }), undefined, refused('token endpoint refused the client: unsupported_grant_type; check the client and auth settings')],
    ['a code that is free text', 400, json({ error: 'oops <b>SECRET</b>' }), undefined, refused('token endpoint refused the client: an error; check the client and auth settings')],
    ['429 with a code', 429, json({ error: 'slow_down' }), undefined, later('token endpoint answered slow_down (HTTP 429)')],
    ['temporarily_unavailable', 400, json({ error: 'temporarily_unavailable' }), undefined, later('token endpoint answered temporarily_unavailable (HTTP 400)')],
    ['a 401 challenge with its error', 401, '', { 'www-authenticate': 'Basic realm="idp", error="invalid_client"' }, refused('token endpoint refused the client: invalid_client; check its client id and its secret or key')],
    ['a bare 401 challenge', 401, '', { 'www-authenticate': 'Basic realm="idp"' }, refused('token endpoint refused the client (HTTP 401); check its client id and its secret or key')],
    ['403 in HTML', 403, '<html>SECRET</html>', { 'content-type': 'text/html' }, refused('token endpoint refused the client (HTTP 403); check its client id and its secret or key')],
    ['500', 500, json({ error: 'server_error' }), undefined, later('token endpoint answered HTTP 500')],
    ['503 in HTML', 503, '<html>busy</html>', { 'content-type': 'text/html' }, later('token endpoint answered HTTP 503')],
    ['429 bare', 429, '', {}, later('token endpoint answered HTTP 429')],
    ['a redirect', 302, '', { location: 'https://elsewhere.example/' }, refused('token endpoint answered HTTP 302 (a redirect); check auth.tokenUrl')],
    ['200 in HTML (a proxy page)', 200, '<html>proxy</html>', { 'content-type': 'text/html' }, later('token endpoint answered HTTP 200 without JSON')],
    ['200 with broken JSON', 200, '{"access_token":', undefined, later('token endpoint answered a body that is not JSON')],
    ['200 without access_token', 200, json({ token_type: 'Bearer' }), undefined, refused('token endpoint answered no usable token (access_token, token_type or expires_in missing or wrong)')],
    ['200 without token_type', 200, json({ access_token: 'AT-SECRET' }), undefined, refused('token endpoint answered no usable token (access_token, token_type or expires_in missing or wrong)')],
    ['200 with token_type mac', 200, json({ access_token: 'AT-SECRET', token_type: 'mac' }), undefined, refused('token endpoint answered a token_type pullq cannot send (not Bearer)')],
  ])('%s (HTTP %i)', async (_name, status, body, headers, expected) => {
    const failure = tokenFailureOf(await errorFor(status, body, headers));
    expect(failure).toEqual(expected);
    expect(JSON.stringify(failure)).not.toMatch(/SECRET/);
  });

  it('a grant gives its own advice per code', async () => {
    expect(tokenFailureOf(await errorFor(400, json({ error: 'invalid_grant' })), { invalid_grant: 'run pullq login' })).toEqual(refused('token endpoint refused the grant: invalid_grant; run pullq login'));
  });

  it('network errors, time-outs and plain http to a remote host (real fetches)', async () => {
    // A port nothing listens on.
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const refusedErr = await oauth.clientCredentialsGrantRequest({ issuer: 'x', token_endpoint: `http://127.0.0.1:${port}/token` }, client, oauth.None(), {}, { [oauth.allowInsecureRequests]: true }).catch((e: unknown) => e);
    expect(tokenFailureOf(refusedErr)).toEqual(later('token endpoint unreachable (ECONNREFUSED)'));
    // A server that accepts and never answers.
    const sockets: import('node:net').Socket[] = [];
    const silent: Server = createServer((s) => void sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(silent.address() as { port: number }).port}/token`;
    const timeoutErr = await oauth.clientCredentialsGrantRequest({ issuer: 'x', token_endpoint: url }, client, oauth.None(), {}, { [oauth.allowInsecureRequests]: true, signal: AbortSignal.timeout(100) }).catch((e: unknown) => e);
    for (const s of sockets) s.destroy();
    silent.close();
    expect(tokenFailureOf(timeoutErr)).toEqual(later('token endpoint timed out'));
    const insecure = await oauth.clientCredentialsGrantRequest({ issuer: 'x', token_endpoint: 'http://idp.example/token' }, client, oauth.None(), {}).catch((e: unknown) => e);
    expect(tokenFailureOf(insecure)).toEqual(refused('auth.tokenUrl is plain http on a host that is not loopback; use https'));
    expect(TOKEN_TIMEOUT_MS).toBeLessThan(15_000);
  });
});

// ---------------------------------------------------------------------------------------------------------------
describe('private keys: PEM (PKCS #8, PKCS #1, SEC 1, literal \\n) and JWK, RSA and EC', () => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ec384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
  const pem = (k: import('node:crypto').KeyObject, type: 'pkcs8' | 'pkcs1' | 'sec1') => k.export({ type, format: 'pem' }) as string;
  const jwk = (k: import('node:crypto').KeyObject) => JSON.stringify(k.export({ format: 'jwk' }));

  it.each([
    ['RSA PKCS #8 PEM', () => pem(rsa.privateKey, 'pkcs8'), rsa.publicKey, 'RS256'],
    ['RSA PKCS #1 PEM ("BEGIN RSA PRIVATE KEY")', () => pem(rsa.privateKey, 'pkcs1'), rsa.publicKey, 'RS256'],
    ['RSA PEM with literal \\n (an env var, a Google key file)', () => pem(rsa.privateKey, 'pkcs8').replace(/\n/g, '\\n'), rsa.publicKey, 'RS256'],
    ['RSA JWK', () => jwk(rsa.privateKey), rsa.publicKey, 'RS256'],
    ['EC P-256 PKCS #8 PEM', () => pem(ec256.privateKey, 'pkcs8'), ec256.publicKey, 'ES256'],
    ['EC P-256 SEC 1 PEM ("BEGIN EC PRIVATE KEY")', () => pem(ec256.privateKey, 'sec1'), ec256.publicKey, 'ES256'],
    ['EC P-256 JWK', () => jwk(ec256.privateKey), ec256.publicKey, 'ES256'],
    ['EC P-384 PEM', () => pem(ec384.privateKey, 'pkcs8'), ec384.publicKey, 'ES384'],
  ] as const)('%s: imported, signs a JWT its public key verifies', async (_name, text, publicKey, alg) => {
    const key = await importPrivateKey(text(), undefined, 'kid-1', 'test');
    expect(key.alg).toBe(alg);
    const jwt = await new SignJWT({ x: 1 }).setProtectedHeader({ alg: key.alg, kid: key.kid! }).sign(key.key);
    expect(decodeProtectedHeader(jwt)).toMatchObject({ alg, kid: 'kid-1' });
    await expect(jwtVerify(jwt, publicKey)).resolves.toBeDefined();
  });

  it('a configured algorithm wins (PS256 with an RSA key)', async () => {
    const key = await importPrivateKey(pem(rsa.privateKey, 'pkcs8'), 'PS256', undefined, 'test');
    const jwt = await new SignJWT({}).setProtectedHeader({ alg: 'PS256' }).sign(key.key);
    await expect(jwtVerify(jwt, rsa.publicKey)).resolves.toBeDefined();
  });

  it.each([
    ['a public JWK', async (): Promise<string> => JSON.stringify(await exportJWK(rsa.publicKey)), /no "d": a public key/],
    ['JSON that is not JSON', async (): Promise<string> => '{"d":"SECRET-KEY-TEXT",', /not valid JSON/],
    ['text that is no key', async (): Promise<string> => '-----BEGIN PRIVATE KEY-----\nSECRET-KEY-TEXT\n-----END PRIVATE KEY-----', /not a PEM private key or a JWK/],
    ['an RSA key with ES256', async (): Promise<string> => pem(rsa.privateKey, 'pkcs8'), /cannot be used with ES256/],
  ] as const)('%s: refused with a message that quotes no key', async (name, text, message) => {
    const err = await importPrivateKey(await text(), name === 'an RSA key with ES256' ? 'ES256' : undefined, undefined, 'OAuth2 client c1').then(
      () => new Error('imported') as Error & { reason: string },
      (e: unknown) => e as Error & { reason: string },
    );
    expect(err.message).toMatch(message);
    expect(err.reason).toMatch(/fix its privateKey$/);
    expect(`${err.message} ${err.reason}`).not.toMatch(/SECRET|MII/);
  });

  it('the config checks the key at load time and reads a Google service-account key file', () => {
    const tmp = tempDir('keys');
    cleanups.push(() => tmp.remove());
    const sa = { type: 'service_account', project_id: 'p', private_key_id: 'abc123', private_key: pem(rsa.privateKey, 'pkcs8'), client_email: 'svc@p.iam.gserviceaccount.com', token_uri: 'https://oauth2.googleapis.com/token' };
    writeFileSync(path.join(tmp.dir, 'sa.json'), JSON.stringify(sa));
    const base = { queue: uniqueQueue('k'), request: { url: 'https://api.example/items/{id}' }, sink: { type: 'file', dir: tmp.dir } };
    const auth = (client: Record<string, unknown>) => ({ ...base, auth: { type: 'oauth2', grant: 'urn:ietf:params:oauth:grant-type:jwt-bearer', tokenUrl: 'https://oauth2.googleapis.com/token', scope: 'https://www.googleapis.com/auth/bigquery.readonly', clients: [client] } });
    const c = testConfig(auth({ clientId: sa.client_email, privateKeyFile: path.join(tmp.dir, 'sa.json'), subject: 'ann@example.com' }));
    expect(c.auth).toMatchObject({ grant: 'jwt_bearer' });
    expect(c.credentials[0]).toMatchObject({ user: sa.client_email, keyId: 'abc123', authMethod: 'none', subject: 'ann@example.com' });
    expect(c.credentials[0]!.privateKey).toBe(sa.private_key.trim());
    expect(() => testConfig(auth({ clientId: 'someone-else', privateKeyFile: path.join(tmp.dir, 'sa.json') }))).toThrow(/auth\.clients\.0\.clientId: must be the service-account key file's client_email/);
    const bad = (privateKey: string) => () => testConfig(auth({ clientId: 'c', privateKey }));
    expect(bad('-----BEGIN PRIVATE KEY-----\nSECRETSECRET\n-----END PRIVATE KEY-----')).toThrow(ConfigError);
    expect(bad('-----BEGIN PRIVATE KEY-----\nSECRETSECRET\n-----END PRIVATE KEY-----')).toThrow(/auth\.clients\.0\.privateKey: not a usable private key/);
    expect(bad('{"kty":"RSA","n":"SECRET"')).toThrow(/^((?!SECRET).)*$/);
    expect(bad(JSON.stringify(rsa.publicKey.export({ format: 'jwk' })))).toThrow(/the JWK has no "d"/);
    expect(() => testConfig({ ...base, auth: { type: 'oauth2', tokenUrl: 'http://idp.internal/token', clients: [{ clientId: 'c', clientSecret: 's' }] } })).toThrow(/auth\.tokenUrl: must be https \(plain http only for a loopback host/);
    expect(testConfig({ ...base, auth: { type: 'oauth2', tokenUrl: 'http://localhost:8080/token', clients: [{ clientId: 'c', clientSecret: 's' }] } }).credentials).toHaveLength(1);
    // A client that signs and has no secret: its key names it (the fingerprint) and seals its tokens.
    const two = testConfig({ ...base, auth: { type: 'oauth2', tokenUrl: 'https://idp.example/token', clients: [{ clientId: 'c', privateKey: pem(rsa.privateKey, 'pkcs8') }, { clientId: 'c', privateKey: pem(ec256.privateKey, 'pkcs8') }] } });
    expect(two.credentials.map((x) => x.authMethod)).toEqual(['private_key_jwt', 'private_key_jwt']);
    expect(two.credentials[0]!.secret).not.toBe(two.credentials[1]!.secret);
  });

  it('a JWT-bearer assertion: iss, sub, aud, iat, exp within 5 minutes, jti, and scope when set', () => {
    expect(assertionClaims({ clientId: 'svc', audience: 'https://idp/token', nowS: 1000, jti: 'j1' })).toEqual({ iss: 'svc', sub: 'svc', aud: 'https://idp/token', iat: 1000, exp: 1000 + ASSERTION_LIFETIME_S, jti: 'j1' });
    expect(assertionClaims({ clientId: 'svc', subject: 'ann', audience: 'a', scope: 'read', nowS: 5, jti: 'j2' })).toMatchObject({ sub: 'ann', scope: 'read' });
    expect(ASSERTION_LIFETIME_S).toBeLessThanOrEqual(300);
  });
});

// ---------------------------------------------------------------------------------------------------------------
describe('client credentials through oauth4webapi against the example API', () => {
  it.skipIf(onCluster())('scope and audience sent, Basic and in the form, one token call per client per lifetime', async () => {
    const api = await startExampleApi({ auth: { type: 'oauth', clients: { 'c-basic': 'sec ret:1', 'c-post': 's2' }, tokenTtlS: 60 } });
    const tmp = tempDir('cc');
    cleanups.push(async () => {
      await api.close();
      tmp.remove();
    });
    for (const authMethod of ['client_secret_basic', 'client_secret_post'] as const) {
      const clientId = authMethod === 'client_secret_basic' ? 'c-basic' : 'c-post';
      const config = testConfig({
        queue: uniqueQueue('cc'),
        request: { url: `${api.url}/items/{id}` },
        auth: { type: 'oauth2', tokenUrl: `${api.url}/oauth/token`, authMethod, scope: 'items:read', audience: 'https://api.example', clients: [{ clientId, clientSecret: authMethod === 'client_secret_basic' ? 'sec ret:1' : 's2' }] },
        sink: { type: 'file', dir: tmp.dir },
      });
      const ids = Array.from({ length: 30 }, (_, i) => `${authMethod}-${i}`);
      const out = await pullInProcess(config, ids, { run: authMethod, workers: 2 });
      expect(out.results.map((r) => r.id).sort()).toEqual([...ids].sort());
      expect(api.tokenRequests.get(clientId)).toBe(1);
    }
    expect(api.tokenForms).toEqual([
      { params: { grant_type: 'client_credentials', scope: 'items:read', audience: 'https://api.example' }, basic: true },
      { params: { grant_type: 'client_credentials', scope: 'items:read', audience: 'https://api.example', client_id: 'c-post' }, basic: false },
    ]);
  });
});

// ---------------------------------------------------------------------------------------------------------------
describe("a 401 for a token the fleet already dropped or replaced is stale (FleetTokenSource.invalidate)", () => {
  it('two replicas holding the same expired token: only the first 401 counts; one for an older token never does', async () => {
    const redis = newRedis();
    const queue = uniqueQueue('inv');
    cleanups.push(async () => {
      await cleanQueue(redis, queue);
      redis.disconnect();
    });
    let n = 0;
    const options = { id: 'fp-inv', what: 'OAuth2 client inv', sealSecret: 'k', sealSalt: 'c', fetch: async () => ({ token: `T${++n}`, expiresIn: 60 }) };
    const [a, b] = [0, 1].map(() => new FleetTokenSource(options, { redis, queue, logger: quietLogger() }));
    expect([await a!.token(), await b!.token()]).toEqual(['T1', 'T1']);
    // Both replicas' requests with T1 answered 401 (a token the server ended early): the second says nothing new.
    expect(await a!.invalidate('T1')).toBe(true);
    expect(await b!.invalidate('T1')).toBe(false);
    expect(await a!.token()).toBe('T2');
    // A late 401 for T1 while the fleet holds T2: stale too, and T2 stays.
    expect(await b!.invalidate('T1')).toBe(false);
    expect(await b!.token()).toBe('T2');
    // A 401 for the current token counts, once.
    expect(await b!.invalidate('T2')).toBe(true);
    expect(await a!.invalidate('T2')).toBe(false);
    expect(n).toBe(2);
  });
});

// ---------------------------------------------------------------------------------------------------------------
/** A pull by `pull` + `workers` extra worker processes against `provider`, every ID once; its duration (s) and stderr. */
async function fleetPull(provider: KeysProvider, auth: Record<string, unknown>, opts: { ids: string[]; workers: number; vars?: Record<string, string>; files?: Record<string, string>; budget?: number }) {
  const tmp = tempDir('keys');
  const queue = uniqueQueue('keys');
  const redis = newRedis();
  const workers: ReturnType<typeof spawnCli>[] = [];
  cleanups.push(async () => {
    for (const w of workers) w.child.kill('SIGTERM');
    await Promise.all(workers.map((w) => w.done));
    await cleanQueue(redis, queue);
    redis.disconnect();
    tmp.remove();
  });
  for (const [name, text] of Object.entries(opts.files ?? {})) writeFileSync(path.join(tmp.dir, name), text);
  writeFileSync(path.join(tmp.dir, 'ids.txt'), `${opts.ids.join('\n')}\n`);
  writeFileSync(path.join(tmp.dir, 'pullq.config.json'), JSON.stringify({
    queue,
    request: { url: `${provider.apiUrl}/items/{id}` },
    auth,
    ...(opts.budget ? { budget: { requests: opts.budget, perSeconds: 1 } } : {}),
    worker: { concurrency: 8 },
    enqueue: { batchSize: 20 },
    sink: { type: 'file', dir: './out' },
  }));
  const env = { REDIS_URL: redisUrl(), PULLQ_LOG_LEVEL: 'warn', ...opts.vars };
  for (let i = 0; i < opts.workers; i++) workers.push(spawnCli(['worker'], { cwd: tmp.dir, env }));
  const started = Date.now();
  const r = await runCli(['pull', 'ids.txt', '--run', 'keys'], { cwd: tmp.dir, env });
  const seconds = (Date.now() - started) / 1000;
  expect(r.code, `pull: ${r.stdout}\n${r.stderr}`).toBe(0);
  const out = readOutput(path.join(tmp.dir, 'out'), 'keys');
  const seen = [...out.results.map((x) => x.id), ...out.failed.map((x) => x.id)];
  expect(seen.sort()).toEqual([...opts.ids].sort());
  return { r, seconds, out, redis, queue };
}

const idsOf = (n: number, p: string) => Array.from({ length: n }, (_, i) => `${p}-${i}`);
/** Token calls one client may make in `seconds` when tokens live `ttlS` and are refreshed at 80 %, for the whole fleet. */
// oidc-provider's expiry is in whole seconds, so a 2 s token may end before 80 % of 2 s: a 401 then refetches
// it (at most one extra call per lifetime).
const callBound = (seconds: number, ttlS: number) => 2 * Math.ceil(seconds / (0.8 * ttlS)) + 2;

describe('private_key_jwt client credentials against oidc-provider', () => {
  it('a PEM key (RSA, privateKeyFile) and a JWK key (EC P-256, ${VAR}), tokens living 2 s, a fleet of 3 (of 2 on the cluster): every ID once, about one token call per lifetime per client, not per replica', async () => {
    const rsa = await testKey('RS256', 'rsa-1');
    const ec = await testKey('ES256', 'ec-1');
    const provider = await startKeysProvider({ ttlS: 2, clients: [{ clientId: 'pem-client', jwks: [rsa.publicJwk], grant: 'client_credentials' }, { clientId: 'jwk-client', jwks: [ec.publicJwk], grant: 'client_credentials' }] });
    cleanups.push(() => provider.close());
    const ids = idsOf(120, 'pkj');
    const { r, seconds } = await fleetPull(
      provider,
      { type: 'oauth2', tokenUrl: provider.tokenUrl, scope: 'items:read', clients: [{ clientId: 'pem-client', privateKeyFile: 'rsa.pem', keyId: 'rsa-1', name: 'pem' }, { clientId: 'jwk-client', privateKey: '${EC_JWK}', name: 'jwk' }] },
      { ids, workers: onCluster() ? 1 : 2, budget: 20, files: { 'rsa.pem': rsa.pem }, vars: { EC_JWK: JSON.stringify(ec.privateJwk) } },
    );
    expect(r.code, r.stderr).toBe(0);
    expect([...provider.served.values()].every((n) => n === 1)).toBe(true);
    console.log(`private_key_jwt, fleet of ${onCluster() ? 2 : 3}: ${JSON.stringify(Object.fromEntries(provider.tokens))} token calls in ${seconds.toFixed(1)} s (tokens live 2 s), ${provider.unauthorized()} 401s, refusals ${JSON.stringify(provider.refusals)}`);
    expect(provider.refusals).toEqual([]);
    for (const client of ['pem-client', 'jwk-client']) {
      expect(provider.tokens.get(client)).toBeGreaterThanOrEqual(1);
      expect(provider.tokens.get(client)).toBeLessThanOrEqual(callBound(seconds, 2));
    }
    // Each client assertion was signed afresh (oidc-provider refuses a replayed jti: no refusals above).
    expect(new Set(provider.assertions).size).toBe(provider.assertions.length);
    // RFC 7523 §3 / OpenID Connect Core §9: iss = sub = the client, aud = the token endpoint, a short life.
    expect(provider.assertions.length).toBeGreaterThanOrEqual(2);
    for (const a of provider.assertions) {
      const claims = decodeJwt(a);
      expect(claims).toMatchObject({ aud: provider.tokenUrl });
      expect(claims.iss).toBe(claims.sub);
      expect(claims.exp! - claims.iat!).toBeLessThanOrEqual(60);
    }
    expect(provider.assertions.map((a) => decodeProtectedHeader(a).kid).sort()).toContain('rsa-1');
  });

  it.skipIf(onCluster())('a client whose key the server does not know is quarantined with one line; the other carries the run', async () => {
    const good = await testKey('RS256', 'k1');
    const wrong = await testKey('RS256', 'k1');
    const provider = await startKeysProvider({ ttlS: 60, clients: [{ clientId: 'good', jwks: [good.publicJwk], grant: 'client_credentials' }, { clientId: 'stale', jwks: [good.publicJwk], grant: 'client_credentials' }] });
    cleanups.push(() => provider.close());
    const ids = idsOf(40, 'wk');
    const { r, out } = await fleetPull(provider, { type: 'oauth2', tokenUrl: provider.tokenUrl, scope: 'items:read', clients: [{ clientId: 'good', privateKey: '${GOOD}' }, { clientId: 'stale', privateKey: '${WRONG}', name: 'stale' }] }, { ids, workers: 0, vars: { GOOD: good.pem, WRONG: wrong.pem } });
    expect(r.code, r.stderr).toBe(0);
    expect(out.failed).toEqual([]);
    expect(r.stderr.match(/credential stale quarantined \(.*?\); the others carry on/g)).toEqual(['credential stale quarantined (token endpoint refused the client: invalid_client; check its client id and its secret or key); the others carry on']);
    // Once, or a few times when requests already under way with it ask before the quarantine lands.
    expect(provider.refusals.length).toBeGreaterThanOrEqual(1);
    expect(provider.refusals.length).toBeLessThanOrEqual(8);
    expect(new Set(provider.refusals.map((x) => `${x.client} ${x.error}`))).toEqual(new Set(['stale invalid_client']));
  });
});

describe('the JWT-bearer grant against oidc-provider (a registered grant type verifying the assertion with jose)', () => {
  it.skipIf(onCluster())('a Google-style service-account key file, a subject and a scope, tokens living 2 s: every ID once, one fresh assertion per token call', async () => {
    const key = await testKey('RS256', 'sa-key-1');
    const provider = await startKeysProvider({ ttlS: 2, clients: [{ clientId: 'svc@proj.iam.gserviceaccount.com', grant: 'jwt_bearer', assertionKey: key.publicKey, subject: 'ann@example.com' }] });
    cleanups.push(() => provider.close());
    const keyFile = JSON.stringify({ type: 'service_account', private_key_id: 'sa-key-1', private_key: key.pem, client_email: 'svc@proj.iam.gserviceaccount.com', token_uri: provider.tokenUrl });
    const ids = idsOf(100, 'jb');
    const { r, seconds } = await fleetPull(
      provider,
      { type: 'oauth2', grant: 'urn:ietf:params:oauth:grant-type:jwt-bearer', tokenUrl: provider.tokenUrl, scope: 'items:read', clients: [{ clientId: 'svc@proj.iam.gserviceaccount.com', privateKeyFile: 'sa.json', subject: 'ann@example.com', name: 'svc' }] },
      { ids, workers: 1, budget: 30, files: { 'sa.json': keyFile } },
    );
    expect(r.code, r.stderr).toBe(0);
    const calls = provider.tokens.get('svc@proj.iam.gserviceaccount.com') ?? 0;
    console.log(`jwt-bearer: ${calls} token calls in ${seconds.toFixed(1)} s (tokens live 2 s), ${provider.unauthorized()} 401s`);
    expect(provider.refusals).toEqual([]);
    expect(calls).toBeGreaterThanOrEqual(1);
    expect(calls).toBeLessThanOrEqual(callBound(seconds, 2));
    // Every assertion distinct (the server refuses a replayed jti), the kid from the key file, scope in the form and the claim.
    expect(provider.assertions).toHaveLength(calls);
    expect(new Set(provider.assertions).size).toBe(calls);
    expect(provider.assertions.map((a) => decodeProtectedHeader(a).kid)).toEqual(Array(calls).fill('sa-key-1'));
    expect(provider.scopesSeen).toEqual(Array(calls).fill({ form: 'items:read', claim: 'items:read' }));
  });

  it.skipIf(onCluster())('an assertion signed with the wrong key: invalid_grant quarantines the client with one line', async () => {
    const key = await testKey('ES256', 'k');
    const wrong = await testKey('ES256', 'k');
    const provider = await startKeysProvider({ ttlS: 60, clients: [{ clientId: 'svc-a', grant: 'jwt_bearer', assertionKey: key.publicKey }, { clientId: 'svc-b', grant: 'jwt_bearer', assertionKey: key.publicKey }] });
    cleanups.push(() => provider.close());
    const { r, out } = await fleetPull(provider, { type: 'oauth2', grant: 'jwt_bearer', tokenUrl: provider.tokenUrl, scope: 'items:read', clients: [{ clientId: 'svc-a', privateKey: '${A}' }, { clientId: 'svc-b', privateKey: '${B}', name: 'svc-b' }] }, { ids: idsOf(30, 'wg'), workers: 0, vars: { A: JSON.stringify(key.privateJwk), B: JSON.stringify(wrong.privateJwk) } });
    expect(r.code, r.stderr).toBe(0);
    expect(out.failed).toEqual([]);
    expect(r.stderr.match(/credential svc-b quarantined \(.*?\); the others carry on/g)).toEqual(['credential svc-b quarantined (token endpoint refused the grant: invalid_grant; check the key, clientId (the iss), subject and audience of the assertion); the others carry on']);
    // Once, or a few times when requests already under way with it ask before the quarantine lands.
    expect(provider.refusals.length).toBeGreaterThanOrEqual(1);
    expect(provider.refusals.length).toBeLessThanOrEqual(8);
    expect(new Set(provider.refusals.map((x) => `${x.client} ${x.error}`))).toEqual(new Set(['svc-b invalid_grant']));
  });
});
