import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { credentialFileOf, loadConfig, parseConfig, readCredentialSet, resolveConfigPath } from '../src/config.js';
import { ConfigError } from '../src/errors.js';
import { tempDir } from './helpers/test-env.js';
import { allowInsecureRequests } from 'oauth4webapi';
import { endpointOptions } from '../src/auth/kinds/oauth2-client-auth.js';
import { describeRedis, redisTargetOf } from '../src/redis/connect-redis.js';

const tmp = tempDir('config');
afterAll(() => tmp.remove());
const env = (vars: Record<string, string> = {}, extra: Record<string, string> = {}) => ({ vars, ...extra });
const url = { url: 'https://api.example.com/items/{id}' };

describe('config', () => {
  it('fills defaults', () => {
    const c = parseConfig({ request: url }, { env: env() });
    expect(c).toMatchObject({
      redis: { url: 'redis://127.0.0.1:6379' },
      queue: 'pullq',
      request: { method: 'GET', timeoutMs: 30_000, maxBodyBytes: 10_485_760 },
      auth: { type: 'none' },
      retry: { attempts: 6, baseDelayMs: 1000, maxDelayMs: 300_000 },
      worker: { concurrency: 16 },
      sink: { type: 'file' },
      output: { carryUnchanged: false, maxMergedBytes: 64 * 1024 * 1024 },
    });
    expect(c.request.conditional).toBe(false);
    expect(c.credentials).toEqual([]);
    // budget.free304 alone: budgets learned from headers, 304s free.
    expect(parseConfig({ request: { ...url, conditional: true }, budget: { free304: true }, output: { carryUnchanged: true } }, { env: env() }).budget).toEqual({ free304: true });
  });

  it.each([
    [{ request: { url: 'https://x/items' } }, 'request.url: must contain {id}'],
    [{ request: { url: 'ftp://x/{id}' } }, 'request.url: must be http or https'],
    [{ request: { url: 'https://{id}.x/' } }, 'request.url: {id} may stand only in the path or the query'],
    [{ request: url, extra: 1 }, 'extra: unknown key'],
    [{ request: { ...url, timeout: 5 } }, 'request.timeout: unknown key'],
    [{ request: url, budget: { requests: 0, perSeconds: 1 } }, 'budget.requests: must be > 0'],
    [{ request: { ...url, timeoutMs: '5' } }, 'request.timeoutMs: must be a number, got string'],
    [{ request: url, auth: { type: 'bearer' } }, 'auth.type: unknown type'],
    [{ request: url, auth: { type: 'header' } }, 'auth.tokens: required'],
    [{ request: url, auth: { type: 'header', tokens: [] } }, 'auth.tokens: must list at least one token'],
    [{ request: url, queue: 'a:b' }, 'queue: must be'],
    [{}, 'request: required'],
    [{ request: url, worker: { concurrency: 0 } }, 'worker.concurrency: must be > 0'],
    // Request templates and pagination (issue #13).
    [{ request: { url: 'https://x/items', headers: { 'x-org': '{org}' } } }, 'request.url: must contain {id} (or request.headers or request.body must)'],
    [{ request: { url: 'https://{org}.x/{id}' } }, 'request.url: {id} may stand only in the path or the query'],
    [{ request: { ...url, body: { q: '{id}' } } }, 'request.body: needs method "POST" (method is "GET")'],
    [{ request: { ...url, method: 'PUT' } }, 'request.method: '],
    [{ request: { ...url, headers: { 'bad header': 'x' } } }, 'request.headers.bad header: must be an HTTP header name'],
    [{ request: { ...url, headers: { 'x-n': 5 } } }, 'request.headers.x-n: must be a string, got number'],
    [{ request: { ...url, pagination: { type: 'links' } } }, 'request.pagination.type: unknown type'],
    [{ request: { ...url, pagination: { type: 'link', maxPages: 0 } } }, 'request.pagination.maxPages: must be > 0'],
    [{ request: { ...url, pagination: { type: 'link', extra: 1 } } }, 'request.pagination.extra: unknown key'],
    [{ request: { ...url, pagination: { type: 'cursor', param: 'cursor' } } }, 'request.pagination.cursorPath: required'],
    [{ request: { ...url, pagination: { type: 'cursor', cursorPath: 'a..b', param: 'c' } } }, 'request.pagination.cursorPath: must be a dot path'],
    [{ request: { ...url, pagination: { type: 'cursor', cursorPath: 'next', param: '' } } }, 'request.pagination.param: must not be empty'],
    [{ request: { ...url, pagination: { type: 'page', param: 'page' } } }, 'request.pagination.itemsPath: required'],
    [{ request: { ...url, pagination: { type: 'page', param: 'page', itemsPath: 'items', start: -1 } } }, 'request.pagination.start: must be >= 0'],
    [{ request: { ...url, method: 'HEAD', pagination: { type: 'link' } } }, 'request.pagination: needs a response body'],
    [{ request: url, output: { mode: 'row' } }, 'output.mode: '],
    [{ request: url, output: { mode: 'id', x: 1 } }, 'output.x: unknown key'],
    // Conditional re-pulls (issue #13).
    [{ request: { ...url, conditional: 'yes' } }, 'request.conditional: must be a boolean, got string'],
    [{ request: { ...url, method: 'POST', conditional: true } }, 'request.conditional: needs method GET or HEAD'],
    [{ request: url, output: { carryUnchanged: true } }, 'output.carryUnchanged: needs request.conditional: true'],
    [{ request: url, output: { carryUnchanged: 1 } }, 'output.carryUnchanged: must be a boolean, got number'],
    [{ request: url, output: { carry: true } }, 'output.carry: unknown key'],
    [{ request: url, output: { maxMergedBytes: 0 } }, 'output.maxMergedBytes: must be > 0'],
    [{ request: url, budget: { requests: 5, perSeconds: 1, free304: 'x' } }, 'budget.free304: must be a boolean, got string'],
    [{ request: { ...url, pagination: { type: 'link' }, conditional: true } }, 'request.conditional: does not combine with request.pagination'],
  ])('%j → %s', (json, message) => {
    expect(() => parseConfig(json, { env: env() })).toThrow(ConfigError);
    expect(() => parseConfig(json, { env: env() })).toThrow(message);
  });

  it('request templates and pagination: defaults, and {id} in a header or a POST body is enough', () => {
    const c = parseConfig({ request: { url: 'https://x/search', method: 'POST', headers: { 'x-item': '{id}' }, body: { query: { id: '{id}' } }, pagination: { type: 'page', param: 'p', itemsPath: 'items' } } }, { env: env() });
    expect(c.request.pagination).toEqual({ type: 'page', param: 'p', itemsPath: 'items', start: 1, maxPages: 100 });
    expect(c.output).toEqual({ mode: 'id', carryUnchanged: false, maxMergedBytes: 67_108_864 });
    expect(parseConfig({ request: url, output: { maxMergedBytes: 1000 } }, { env: env() }).output.maxMergedBytes).toBe(1000);
    expect(c.request.body).toEqual({ query: { id: '{id}' } });
    expect(parseConfig({ request: { url: 'https://x/{org}/{id}', pagination: { type: 'link' } }, output: { mode: 'page' } }, { env: env() }).request.pagination).toEqual({ type: 'link', maxPages: 100 });
  });

  it('request.redirects: followed up to 10 by default, never to a private address of another origin nor https → http; bad values named', () => {
    expect(parseConfig({ request: url }, { env: env() }).request.redirects).toEqual({ follow: true, max: 10, allowPrivate: false, allowDowngrade: false });
    expect(parseConfig({ request: { ...url, redirects: { allowPrivate: true, max: 0 } } }, { env: env() }).request.redirects).toEqual({ follow: true, max: 0, allowPrivate: true, allowDowngrade: false });
    for (const [redirects, message] of [
      [{ allowPrivate: 'yes' }, 'request.redirects.allowPrivate: must be a boolean, got string'],
      [{ allowDowngrade: 1 }, 'request.redirects.allowDowngrade: must be a boolean, got number'],
      [{ follow: null }, 'request.redirects.follow: must be a boolean'],
      [{ max: -1 }, 'request.redirects.max: must be >= 0'],
      [{ max: 1.5 }, 'request.redirects.max: must be an int'],
      [{ max: 1000 }, 'request.redirects.max: must be <= 100'],
      [{ allowPublic: true }, 'request.redirects.allowPublic: unknown key'],
    ] as const) {
      expect(() => parseConfig({ request: { ...url, redirects } }, { env: env() }), message).toThrow(message);
    }
  });

  it('substitutes ${VAR} and names an unset one with its path', () => {
    const c = parseConfig({ request: url, auth: { type: 'header', tokens: ['${TOKEN_A}', { token: 'x-${TOKEN_B}', name: 'ci-bot' }] } }, { env: env({ TOKEN_A: 'aaa', TOKEN_B: 'bbb' }) });
    expect(c.credentials.map((x) => x.secret)).toEqual(['aaa', 'x-bbb']);
    expect(() => parseConfig({ request: url, auth: { type: 'header', tokens: ['${NOPE}'] } }, { env: env() })).toThrow('auth.tokens.0: environment variable NOPE is not set');
  });

  it('REDIS_URL overrides redis.url', () => {
    expect(parseConfig({ request: url, redis: { url: 'redis://a:1' } }, { env: env({}, { redisUrl: 'redis://b:2' }) }).redis.url).toBe('redis://b:2');
  });

  it('reads tokensFile relative to the config file', () => {
    writeFileSync(path.join(tmp.dir, 'tokens.txt'), 'one\r\n\n# c\ntwo\n');
    writeFileSync(path.join(tmp.dir, 'c.json'), JSON.stringify({ request: url, auth: { type: 'query', param: 'k', tokensFile: 'tokens.txt' }, sink: { type: 'file', dir: 'out' } }));
    const c = loadConfig(path.join(tmp.dir, 'c.json'), env());
    expect(c.credentials.map((x) => x.secret)).toEqual(['one', 'two']);
    if (c.sink.type !== 'file') throw new Error('file sink expected');
    expect(c.sink.dir).toBe(path.join(tmp.dir, 'out'));
  });

  it('finds the file: --config, then $PULLQ_CONFIG, then ./pullq.config.json', () => {
    expect(resolveConfigPath('/a.json', env({}, { configPath: '/b.json' }))).toBe('/a.json');
    expect(resolveConfigPath(undefined, env({}, { configPath: '/b.json' }))).toBe('/b.json');
    expect(resolveConfigPath(undefined, env())).toBe(path.resolve('pullq.config.json'));
  });

  it('says clearly when the file is missing or not JSON', () => {
    expect(() => loadConfig(path.join(tmp.dir, 'none.json'), env())).toThrow(/config file not found: .*none\.json/);
    writeFileSync(path.join(tmp.dir, 'bad.json'), '{ "request": ');
    expect(() => loadConfig(path.join(tmp.dir, 'bad.json'), env())).toThrow(/bad\.json: not valid JSON/);
  });
});

describe('secrets never in clear over plain http (https, or http to a loopback host only)', () => {
  const login = (loginUrl: string) => ({ request: { url: 'https://api.test/items/{id}' }, auth: { type: 'login', loginUrl, accounts: [{ username: 'u', password: 'p' }] } });
  const oauth1 = (requestUrl: string, signatureMethod: string) => ({ request: { url: requestUrl }, auth: { type: 'oauth1', signatureMethod, credentials: [{ consumerKey: 'ck', consumerSecret: 'cs' }] } });

  it.each([
    ['https://login.test/login', true],
    ['http://127.0.0.1:8080/login', true],
    ['http://127.1.2.3/login', true],
    ['http://localhost/login', true],
    ['http://[::1]:9/login', true],
    ['http://login.test/login', false],
    ['http://127.evil.test/login', false],
    ['http://10.0.0.1/login', false],
  ])('auth.loginUrl %s: allowed %s', (loginUrl, ok) => {
    if (ok) expect(parseConfig(login(loginUrl)).auth).toMatchObject({ loginUrl });
    else expect(() => parseConfig(login(loginUrl))).toThrow('config: auth.loginUrl: must be https (plain http only for a loopback host: 127.0.0.1, localhost, [::1]): the password is sent in it');
  });

  it('oauth1 PLAINTEXT sends the secrets as the signature: request.url must be https (or loopback http); HMAC signatures may go over http', () => {
    expect(() => parseConfig(oauth1('http://api.test/items/{id}', 'PLAINTEXT'))).toThrow(
      'config: request.url: must be https with auth.signatureMethod "PLAINTEXT" (plain http only for a loopback host: 127.0.0.1, localhost, [::1]): PLAINTEXT sends the consumer and token secrets as the signature; use https or HMAC-SHA256',
    );
    expect(parseConfig(oauth1('https://api.test/items/{id}', 'PLAINTEXT')).auth).toMatchObject({ signatureMethod: 'PLAINTEXT' });
    expect(parseConfig(oauth1('http://127.0.0.1:9/items/{id}', 'PLAINTEXT')).auth).toMatchObject({ signatureMethod: 'PLAINTEXT' });
    expect(parseConfig(oauth1('http://api.test/items/{id}', 'HMAC-SHA256')).auth).toMatchObject({ signatureMethod: 'HMAC-SHA256' });
  });

  it('the oauth2 token endpoint has the same rule (a host that only starts with 127. is not loopback)', () => {
    const oauth2 = (tokenUrl: string) => ({ request: { url: 'https://api.test/items/{id}' }, auth: { type: 'oauth2', tokenUrl, clients: [{ clientId: 'c', clientSecret: 's' }] } });
    expect(() => parseConfig(oauth2('http://127.evil.test/token'))).toThrow('auth.tokenUrl: must be https');
    expect(parseConfig(oauth2('http://127.0.0.1:9/token')).auth).toMatchObject({ tokenUrl: 'http://127.0.0.1:9/token' });
    // oauth4webapi's plain-http permission follows the same function.
    expect(allowInsecureRequests in endpointOptions('http://127.evil.test/token')).toBe(false);
    expect(allowInsecureRequests in endpointOptions('http://127.0.0.1:9/token')).toBe(true);
    expect(allowInsecureRequests in endpointOptions('https://idp.test/token')).toBe(false);
  });
});

describe('credentials files (auth.credentialsFile, auth.tokensFile): read at load and again on a rotation', () => {
  const dir = tempDir('config-creds');
  afterAll(() => dir.remove());
  const cfgFile = path.join(dir.dir, 'pullq.config.json');
  const write = (name: string, content: unknown) => writeFileSync(path.join(dir.dir, name), typeof content === 'string' ? content : JSON.stringify(content));
  const load = (auth: Record<string, unknown>, vars: Record<string, string> = {}) => {
    write('pullq.config.json', { request: { url: 'http://127.0.0.1:9/items/{id}' }, auth });
    return loadConfig(cfgFile, env(vars));
  };

  it.each([
    ['header', { type: 'header' }, ['t-1', { token: 't-2', name: 'second', budget: { requests: 5, perSeconds: 1 } }], [{ secret: 't-1' }, { secret: 't-2', name: 'second', budget: { requests: 5, perSeconds: 1 } }]],
    ['query', { type: 'query', param: 'k' }, ['q-1'], [{ secret: 'q-1', kind: 'query' }]],
    ['basic', { type: 'basic' }, [{ username: 'u', password: 'p', name: 'b1' }], [{ kind: 'basic', user: 'u', secret: 'p', name: 'b1' }]],
    ['oauth2', { type: 'oauth2', tokenUrl: 'http://127.0.0.1:9/token' }, [{ clientId: 'c', clientSecret: 's' }], [{ kind: 'oauth2', user: 'c', secret: 's', authMethod: 'client_secret_basic' }]],
    ['login', { type: 'login', loginUrl: 'http://127.0.0.1:9/login' }, [{ username: 'a@x', password: 'pw' }], [{ kind: 'login', user: 'a@x', secret: 'pw' }]],
    ['oauth1', { type: 'oauth1' }, [{ consumerKey: 'ck', consumerSecret: 'cs', token: 't', tokenSecret: 'ts' }], [{ kind: 'oauth1', user: 'ck', secret: 'cs&ts', token: 't' }]],
  ] as const)('%s: a JSON array of what the inline list holds; source credentialsFile', (_type, auth, entries, want) => {
    write(`${_type}.json`, entries);
    const c = load({ ...auth, credentialsFile: `${_type}.json` });
    expect(c.credentials).toMatchObject(want.map((w) => ({ ...w, source: 'credentialsFile' })));
  });

  it('custom (library): credential objects, as inline', () => {
    write('custom.json', [{ apiKey: 'k-1', name: 'c1' }]);
    const c = parseConfig({ request: url, auth: { type: 'custom', sign: () => undefined, credentialsFile: path.join(dir.dir, 'custom.json') } }, { env: env() });
    expect(c.credentials).toMatchObject([{ kind: 'custom', name: 'c1', entry: { apiKey: 'k-1', name: 'c1' }, source: 'credentialsFile' }]);
    expect(parseConfig({ request: url, auth: { type: 'custom', sign: () => undefined } }, { env: env() }).credentials).toMatchObject([{ kind: 'custom', source: 'library' }]);
  });

  it('${VAR} in the file is replaced as in the config; readCredentialSet reads the file as it is now', () => {
    write('vars.json', ['${ROT_A}', { token: 'x-${ROT_B}' }]);
    const c = load({ type: 'header', credentialsFile: 'vars.json' }, { ROT_A: 'aaa', ROT_B: 'bbb' });
    expect(c.credentials.map((x) => x.secret)).toEqual(['aaa', 'x-bbb']);
    expect(credentialFileOf(c)).toEqual({ key: 'credentialsFile', file: path.join(dir.dir, 'vars.json') });
    write('vars.json', ['new-${ROT_A}']);
    expect(readCredentialSet(c, env({ ROT_A: 'aaa' })).map((x) => [x.secret, x.source])).toEqual([['new-aaa', 'credentialsFile']]);
    write('lines.txt', 'one\n# note\n\ntwo\n');
    const t = load({ type: 'header', tokensFile: 'lines.txt' });
    write('lines.txt', 'three\n');
    expect(readCredentialSet(t, env()).map((x) => [x.secret, x.source])).toEqual([['three', 'tokensFile']]);
    // Inline credentials: nothing to read again.
    const inline = load({ type: 'header', tokens: ['i-1'] });
    expect(credentialFileOf(inline)).toBeNull();
    expect(readCredentialSet(inline, env())).toBe(inline.credentials);
  });

  it.each([
    ['not JSON', '["secret-abc", ', 'creds.json: not valid JSON (give a JSON array of tokens)'],
    ['not an array', { token: 'secret-abc' }, 'creds.json: must be a JSON array of tokens'],
    ['empty', [], 'creds.json: lists no tokens'],
    ['an entry that fails the schema', ['secret-abc', { token: '' }], 'creds.json: 1.token: must not be empty'],
    ['an unknown key', [{ token: 'secret-abc', nam: 'x' }], 'creds.json: 0.nam: unknown key'],
    ['an unset variable', ['${ROT_UNSET}'], 'creds.json: 0: environment variable ROT_UNSET is not set'],
  ] as const)('refused, naming the file, never quoting it: %s', (_what, content, message) => {
    write('creds.json', ['secret-abc']);
    const c = load({ type: 'header', credentialsFile: 'creds.json' }, {});
    write('creds.json', content);
    let err: unknown;
    try {
      readCredentialSet(c, env());
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain(`auth.credentialsFile ${path.join(dir.dir, message)}`);
    expect((err as Error).message).not.toContain('secret-abc');
    // At load, the same refusal.
    expect(() => load({ type: 'header', credentialsFile: 'creds.json' })).toThrow(message);
  });

  it.each([
    [{ type: 'header', tokens: ['a'], credentialsFile: 'x.json' }, 'auth: give either tokens or credentialsFile, not both'],
    [{ type: 'header', tokensFile: 'x.txt', credentialsFile: 'x.json' }, 'auth: give either tokensFile or credentialsFile, not both'],
    [{ type: 'basic' }, 'auth.credentials: required for auth type "basic" (or credentialsFile)'],
    [{ type: 'oauth2', tokenUrl: 'http://127.0.0.1:9/t' }, 'auth.clients: required for auth type "oauth2" (or credentialsFile)'],
    [{ type: 'login', loginUrl: 'http://127.0.0.1:9/l' }, 'auth.accounts: required for auth type "login" (or credentialsFile)'],
    [{ type: 'header', credentialsFile: 'missing.json' }, 'missing.json: cannot read it: ENOENT'],
    [{ type: 'header', tokensFile: 'missing.txt' }, 'missing.txt: cannot read it: ENOENT'],
    [{ type: 'basic', credentialsFile: 'basic-bad.json' }, 'basic-bad.json: 0.password: required'],
    [{ type: 'oauth1', credentialsFile: 'oauth1-bad.json' }, 'oauth1-bad.json: 0.tokenSecret: required with token'],
  ])('%j → %s', (auth, message) => {
    write('x.json', ['a']);
    write('x.txt', 'a\n');
    write('basic-bad.json', [{ username: 'u' }]);
    write('oauth1-bad.json', [{ consumerKey: 'ck', consumerSecret: 'cs', token: 't' }]);
    expect(() => load(auth)).toThrow(ConfigError);
    expect(() => load(auth)).toThrow(message);
  });
});

describe('config: redis.sentinels', () => {
  const withRedis = (redis: Record<string, unknown>) => ({ request: url, redis });
  const S = ['redis://s1:26379', 'redis://s2:26379', 'redis://s3'];

  it('takes sentinels with a name (and an optional sentinelPassword); connectRedis gets the Sentinel target', () => {
    const c = parseConfig(withRedis({ sentinels: S, name: 'mymaster', sentinelPassword: 'sp' }), { env: env() });
    expect(c.redis).toMatchObject({ sentinels: S, name: 'mymaster', sentinelPassword: 'sp' });
    expect(redisTargetOf(c.redis)).toEqual({ sentinel: { sentinels: S, name: 'mymaster', sentinelPassword: 'sp' } });
    expect(describeRedis(c.redis)).toBe('master "mymaster" of the Sentinels redis://s1:26379, redis://s2:26379, redis://s3');
    expect(redisTargetOf(parseConfig({ request: url }, { env: env() }).redis)).toEqual({});
  });

  it('user, password and TLS as in redis.url: rediss://user:pw@host:port; the password never in describeRedis', () => {
    const c = parseConfig(withRedis({ sentinels: ['rediss://app:s3cret@s1:26380', 'rediss://app:s3cret@[::1]:26381'], name: 'm' }), { env: env() });
    expect(describeRedis(c.redis)).not.toContain('s3cret');
  });

  it.each([
    [{ sentinels: S }, 'config: redis.name: is required with redis.sentinels'],
    [{ name: 'mymaster' }, 'config: redis.sentinels: is required with redis.name'],
    [{ sentinelPassword: 'x' }, 'config: redis.sentinelPassword: is only for redis.sentinels'],
    [{ sentinels: S, name: 'm', cluster: ['redis://c1:7000'] }, 'config: redis.sentinels: does not combine with redis.cluster'],
    [{ sentinels: [], name: 'm' }, 'config: redis.sentinels: must list at least one sentinel'],
    [{ sentinels: ['http://s1:26379'], name: 'm' }, 'config: redis.sentinels.0: must start with redis:// or rediss://'],
    [{ sentinels: ['redis://s1:26379/0'], name: 'm' }, 'config: redis.sentinels.0: must be redis://host:port or rediss://user:password@host:port (no path)'],
    [{ sentinels: ['redis://s1:26379', 'rediss://s2:26379'], name: 'm' }, 'config: redis.sentinels: must all use the same scheme, user and password'],
    [{ sentinels: S, name: '' }, 'config: redis.name: must not be empty'],
  ])('refuses %j', (redis, message) => {
    expect(() => parseConfig(withRedis(redis), { env: env() })).toThrow(message);
  });
});
