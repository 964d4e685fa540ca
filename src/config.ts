import { createPrivateKey, KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { ConfigError } from './errors.js';

// The only module that reads process.env (DEVELOPERS.md): everything else gets
// its settings from the Config object built here, or from `runtimeEnv()`.

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

const positiveInt = z.number().int('must be an integer').positive('must be > 0');

const budgetSchema = z
  .strictObject({
    requests: z.number().int('must be an integer').positive('must be > 0').optional(),
    perSeconds: z.number().positive('must be > 0').optional(),
    /** Requests in flight with one credential, fleet-wide (a lease per request; a crashed replica's come back when they expire). */
    maxInFlight: z.number().int('must be an integer').positive('must be > 0').optional(),
    /** At most this many starts back to back; the rest are paced evenly (default: 250 ms worth of starts, at least 1). */
    burst: z.number().int('must be an integer').positive('must be > 0').optional(),
    /**
     * A 304 answer to a conditional request (request.conditional) does not count against this budget
     * (GitHub documents this for its primary limit): its start is given back once it is answered.
     */
    free304: z.boolean().optional(),
  })
  .superRefine((b, ctx) => {
    if ((b.requests === undefined) !== (b.perSeconds === undefined)) {
      ctx.addIssue({ code: 'custom', path: [b.requests === undefined ? 'requests' : 'perSeconds'], message: 'required with ' + (b.requests === undefined ? 'perSeconds' : 'requests') });
    } else if (b.requests === undefined && b.maxInFlight === undefined && b.burst === undefined && b.free304 === undefined) {
      ctx.addIssue({ code: 'custom', message: 'give requests and perSeconds, maxInFlight, burst, or several of them' });
    }
  });

/** A budget as the config gives it: a rate (requests per perSeconds), an in-flight cap, or both. */
export type Budget = z.infer<typeof budgetSchema>;

const nonEmpty = z.string().min(1, 'must not be empty');

const tokenEntry = z.union([
  nonEmpty,
  z.strictObject({ token: nonEmpty, name: z.string().regex(NAME_RE, 'must be letters, digits, . _ -').optional(), budget: budgetSchema.optional() }),
]);

/**
 * A file holding the auth's credentials (relative to the config file): a JSON array of what its inline list
 * holds (tokens entries, credentials, clients or accounts). Watched: a change reaches every replica (README, Rotating credentials).
 */
const credentialsFile = nonEmpty.optional();

const tokensFields = {
  tokens: z.array(tokenEntry).min(1, 'must list at least one token').optional(),
  /** One token a line (# comments, blank lines ignored); watched like credentialsFile. */
  tokensFile: nonEmpty.optional(),
  credentialsFile,
};

/** A dot path into a JSON body: `next_cursor`, `meta.next`, `data.items`. */
const dotPath = z.string().regex(/^[^.\s]+(\.[^.\s]+)*$/, 'must be a dot path into the JSON body, e.g. "meta.next_cursor"');

const credentialName = z.string().regex(NAME_RE, 'must be letters, digits, . _ -').optional();

const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });

/** A private key for JWTs (private_key_jwt, the JWT-bearer grant): PEM or JWK text (`${VAR}`), or a file holding one. */
const privateKeyFields = {
  /** PEM ("-----BEGIN PRIVATE KEY-----…") or a JWK's JSON; usually "${VAR}". */
  privateKey: nonEmpty.optional(),
  /** A file holding the PEM or the JWK (relative to the config file). */
  privateKeyFile: nonEmpty.optional(),
  /** The key's id (JWT header `kid`), when the server wants one. */
  keyId: nonEmpty.optional(),
  /** JWS algorithm; default RS256 for RSA keys, ES256 for P-256 keys (or the JWK's `alg`). */
  algorithm: z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']).optional(),
};

/** One OAuth2 client. clientSecret is optional: a public client (PKCE), or one that signs with a private key. */
export const oauth2ClientSchema = z.strictObject({
  clientId: nonEmpty,
  clientSecret: nonEmpty.optional(),
  /** Grant refresh_token: the starting refresh token (the fleet keeps the rotated ones in Redis). */
  refreshToken: nonEmpty.optional(),
  /** Grant jwt_bearer: the assertion's `sub` (a user to act for, Google's domain-wide delegation). */
  subject: nonEmpty.optional(),
  ...privateKeyFields,
  name: credentialName,
  budget: budgetSchema.optional(),
});

/** One account of a login endpoint. */
export const loginAccountSchema = z.strictObject({ username: z.string(), password: z.string(), name: credentialName, budget: budgetSchema.optional() });

/** One OAuth 1.0a credential: the consumer (the app) and, for three-legged access, the token. */
export const oauth1CredentialSchema = z.strictObject({
  consumerKey: nonEmpty,
  consumerSecret: z.string(),
  token: nonEmpty.optional(),
  tokenSecret: z.string().optional(),
  name: credentialName,
  budget: budgetSchema.optional(),
});

/** One basic-auth pair. */
export const basicCredentialSchema = z.strictObject({ username: z.string(), password: z.string(), name: credentialName, budget: budgetSchema.optional() });

/**
 * The library's own signer (auth type "custom"): gets the whole request and the credential object
 * as configured, returns the request to send (or changes it in place and returns nothing).
 */
export type CustomSigner = (request: SignerRequest, credential: Readonly<Record<string, unknown>>) => Partial<SignerRequest> | void | Promise<Partial<SignerRequest> | void>;

/**
 * The request a custom signer gets: a copy of what is about to be sent (each try, each page), header names in
 * lower case (the config's fixed headers, the templated ones, content-type), `body` the text sent, if any.
 * Returned fields replace the copy's (headers: the whole set); a field not returned is the copy's.
 */
export interface SignerRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string;
}

/** One credential object of auth type "custom": `name` and `budget` are pullq's, the rest is the signer's. */
const customEntrySchema = z.looseObject({ name: credentialName, budget: budgetSchema.optional() });

const authSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('none') }),
  z.strictObject({
    type: z.literal('header'),
    header: z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'must be an HTTP header name').default('Authorization'),
    scheme: z.string().regex(/^[A-Za-z0-9._~+/-]*$/, 'must be one word, or "" for the raw token').default('Bearer'),
    ...tokensFields,
  }),
  z.strictObject({ type: z.literal('query'), param: nonEmpty, ...tokensFields }),
  z.strictObject({
    type: z.literal('basic'),
    credentials: z.array(basicCredentialSchema).min(1, 'must list at least one credential').optional(),
    credentialsFile,
  }),
  z.strictObject({
    type: z.literal('oauth2'),
    /** client_credentials (default), refresh_token, authorization_code (`pullq login`), jwt_bearer (RFC 7523 §2.1; the URN too). */
    grant: z
      .enum(['client_credentials', 'refresh_token', 'authorization_code', 'jwt_bearer', 'urn:ietf:params:oauth:grant-type:jwt-bearer'])
      .default('client_credentials')
      .transform((g) => (g === 'urn:ietf:params:oauth:grant-type:jwt-bearer' ? 'jwt_bearer' : g)),
    tokenUrl: httpUrl,
    /** authorization_code: where `pullq login` sends the browser. */
    authorizeUrl: httpUrl.optional(),
    /** authorization_code: `pullq login` takes the redirect on http://127.0.0.1:<redirectPort>/callback (RFC 8252). */
    redirectPort: z.number().int().min(1, 'must be 1-65535').max(65535, 'must be 1-65535').default(8976),
    clients: z.array(oauth2ClientSchema).min(1, 'must list at least one client').optional(),
    credentialsFile,
    scope: z.string().optional(),
    audience: z.string().optional(),
    /** How the client authenticates at the token endpoint; default: private_key_jwt with a key, client_secret_basic with a secret, none without. */
    authMethod: z.enum(['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none']).optional(),
    /**
     * Key material the refresh tokens of clients without a secret are sealed with in Redis (a public client):
     * usually "${VAR}". Without it they are sealed under the deployment key kept in Redis itself.
     */
    sealKey: nonEmpty.optional(),
  }),
  z.strictObject({
    type: z.literal('login'),
    loginUrl: httpUrl,
    /** JSON template of the login body; {username} and {password} are put in as JSON strings. */
    body: z.json().default({ username: '{username}', password: '{password}' }),
    /** true: send the body as application/x-www-form-urlencoded (its top-level fields) instead of JSON. */
    form: z.boolean().default(false),
    /** Dot path to the token in the login answer. */
    tokenPath: dotPath.default('token'),
    /** Dot path to the token's lifetime in seconds; else the JWT `exp`; else until a 401. */
    expiresInPath: dotPath.optional(),
    header: z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'must be an HTTP header name').default('Authorization'),
    scheme: z.string().regex(/^[A-Za-z0-9._~+/-]*$/, 'must be one word, or "" for the raw token').default('Bearer'),
    accounts: z.array(loginAccountSchema).min(1, 'must list at least one account').optional(),
    credentialsFile,
  }),
  z.strictObject({
    type: z.literal('oauth1'),
    signatureMethod: z.enum(['HMAC-SHA256', 'HMAC-SHA1', 'PLAINTEXT']).default('HMAC-SHA256'),
    /** The Authorization header's realm (NetSuite: the account id); none when unset. */
    realm: z.string().optional(),
    credentials: z.array(oauth1CredentialSchema).min(1, 'must list at least one credential').optional(),
    credentialsFile,
  }),
  z.strictObject({
    type: z.literal('custom'),
    sign: z.custom<CustomSigner>((v) => typeof v === 'function', 'must be a function: auth type "custom" is for the library (createPullq), not a JSON config'),
    /** Each credential object is given to sign() as it is; `name` and `budget` are pullq's, the rest is yours. */
    credentials: z.array(customEntrySchema).min(1, 'must list at least one credential').optional(),
    /** Default (neither credentials nor credentialsFile): one credential, `{}`. */
    credentialsFile,
  }),
]);

/**
 * A placeholder of a request template (issue #13): `{name}`, where name is a column of the IDs
 * file (`{id}` always exists). Braces around anything else are literal text.
 */
export const PLACEHOLDER_RE = /\{([A-Za-z_][A-Za-z0-9_-]{0,63})\}/g;

/** The placeholder names in every string of a value (JSON: object values and array items, not keys). */
export function placeholdersOf(value: unknown, into: Set<string> = new Set()): Set<string> {
  if (typeof value === 'string') for (const m of value.matchAll(PLACEHOLDER_RE)) into.add(m[1]!);
  else if (Array.isArray(value)) for (const v of value) placeholdersOf(v, into);
  else if (value !== null && typeof value === 'object') for (const v of Object.values(value)) placeholdersOf(v, into);
  return into;
}

const requestUrl = z.string().superRefine((value, ctx) => {
  let url: URL;
  try {
    url = new URL(value.replace(PLACEHOLDER_RE, 'pullq-id'));
  } catch {
    ctx.addIssue({ code: 'custom', message: `is not a valid URL: ${JSON.stringify(value)}` });
    return;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    ctx.addIssue({ code: 'custom', message: `must be http or https, not ${url.protocol.slice(0, -1)}` });
  } else if (url.host.includes('pullq-id') || url.username.includes('pullq-id') || url.password.includes('pullq-id') || url.hash.includes('pullq-id')) {
    ctx.addIssue({ code: 'custom', message: '{id} may stand only in the path or the query (so may any {column})' });
  }
});

const maxPages = positiveInt.max(100_000, 'must be <= 100000').default(100);

/**
 * Pages per ID (issue #13). Every page is a request under the credential budget and the retry
 * policy; `maxPages` caps them (the ID then ends with `truncated: true`).
 */
const paginationSchema = z.discriminatedUnion('type', [
  // RFC 8288 `Link: <…>; rel="next"` (GitHub): followed only to the same origin.
  z.strictObject({ type: z.literal('link'), maxPages, itemsPath: dotPath.optional() }),
  // A cursor read from the JSON body at cursorPath, sent as the query parameter `param`; stops when missing, null or "".
  z.strictObject({ type: z.literal('cursor'), cursorPath: dotPath, param: nonEmpty, maxPages, itemsPath: dotPath.optional() }),
  // A page number in the query parameter `param`, from `start`; stops at a page whose itemsPath array is empty or missing.
  z.strictObject({ type: z.literal('page'), param: nonEmpty, start: z.number().int('must be an integer').nonnegative('must be >= 0').default(1), itemsPath: dotPath, maxPages }),
]);

/** `request.pagination` as parsed. */
export type Pagination = z.infer<typeof paginationSchema>;

/**
 * What a redirect may do. Another origin than the request's at a non-public address (loopback,
 * private, link-local, …: src/policy/is-public-address.ts), and https → http, are refused unless
 * allowed: such a redirect could store a cloud's metadata or a local service's answer as data.
 */
const redirectsSchema = z
  .strictObject({
    follow: z.boolean().default(true),
    max: z.number().int('must be an integer').nonnegative('must be >= 0').max(100, 'must be <= 100').default(10),
    allowPrivate: z.boolean().default(false),
    allowDowngrade: z.boolean().default(false),
  })
  .prefault({});

const headerName = z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'must be an HTTP header name');

const requestSchema = z
  .strictObject({
    url: requestUrl,
    method: z.enum(['GET', 'POST', 'HEAD']).default('GET'),
    /** Values may hold placeholders, inserted as text (an ID with a control character is invalid_id). */
    headers: z.record(headerName, z.string()).default({}),
    /** A JSON template sent as the body (method POST): a placeholder becomes (part of) a JSON string, never spliced text. */
    body: z.json().optional(),
    pagination: paginationSchema.optional(),
    /**
     * Conditional re-pulls: send If-None-Match / If-Modified-Since with each ID's ETag / Last-Modified
     * from the last complete run of the same series (src/runs/series.ts); a 304 is written as unchanged.
     */
    conditional: z.boolean().default(false),
    timeoutMs: positiveInt.default(30_000),
    maxBodyBytes: positiveInt.default(10 * 1024 * 1024),
    redirects: redirectsSchema,
  })
  .superRefine((r, ctx) => {
    if (r.body !== undefined && r.method !== 'POST') ctx.addIssue({ code: 'custom', path: ['body'], message: `needs method "POST" (method is "${r.method}")` });
    if (r.pagination && r.method === 'HEAD') ctx.addIssue({ code: 'custom', path: ['pagination'], message: 'needs a response body: method GET or POST' });
    // One set of validators per ID: a paginated ID's pages would each need their own.
    if (r.pagination && r.conditional) ctx.addIssue({ code: 'custom', path: ['conditional'], message: 'does not combine with request.pagination (validators are kept per ID, not per page)' });
    const inUrl = placeholdersOf(r.url);
    if (!inUrl.has('id') && !placeholdersOf(r.headers).has('id') && !placeholdersOf(r.body).has('id')) {
      ctx.addIssue({ code: 'custom', path: ['url'], message: 'must contain {id} (or request.headers or request.body must)' });
    }
  });

/** A sentinel's URL: a host, an optional port, user and password, and no path, query or fragment. */
function isSentinelUrl(value: string): boolean {
  try {
    const u = new URL(value);
    return u.hostname !== '' && (u.pathname === '' || u.pathname === '/') && u.search === '' && u.hash === '';
  } catch {
    return false;
  }
}

export const configSchema = z.strictObject({
  redis: z
    .strictObject({
      url: z.string().regex(/^rediss?:\/\//, 'must start with redis:// or rediss://').default('redis://127.0.0.1:6379'),
      /** Seed nodes of a Redis Cluster (a cluster is also detected from the url); user, password and TLS come from the url. */
      cluster: z.array(z.string().regex(/^rediss?:\/\//, 'must start with redis:// or rediss://')).min(1, 'must list at least one node').optional(),
      /** Redis Sentinel: the sentinels' URLs (user, password and TLS of the Redis nodes as in url) and the master's name. */
      sentinels: z.array(z.string().regex(/^rediss?:\/\//, 'must start with redis:// or rediss://').refine(isSentinelUrl, 'must be redis://host:port or rediss://user:password@host:port (no path)')).min(1, 'must list at least one sentinel').optional(),
      name: z.string().min(1, 'must not be empty').optional(),
      sentinelPassword: z.string().min(1, 'must not be empty').optional(),
    })
    .superRefine((r, ctx) => {
      if (r.sentinels && !r.name) ctx.addIssue({ code: 'custom', path: ['name'], message: 'is required with redis.sentinels: the master name the sentinels monitor (e.g. "mymaster")' });
      if (!r.sentinels && r.name) ctx.addIssue({ code: 'custom', path: ['sentinels'], message: 'is required with redis.name: list the sentinels, e.g. ["redis://s1:26379"]' });
      if (!r.sentinels && r.sentinelPassword) ctx.addIssue({ code: 'custom', path: ['sentinelPassword'], message: 'is only for redis.sentinels' });
      if (r.sentinels && r.cluster) ctx.addIssue({ code: 'custom', path: ['sentinels'], message: 'does not combine with redis.cluster: Sentinel watches one primary, a cluster has its own failover' });
      if (r.sentinels) {
        const auth = new Set(r.sentinels.map((s) => { const u = new URL(s); return `${u.protocol}${u.username}:${u.password}`; }));
        if (auth.size > 1) ctx.addIssue({ code: 'custom', path: ['sentinels'], message: 'must all use the same scheme, user and password (they are those of the Redis nodes)' });
      }
    })
    .prefault({}),
  queue: z.string().regex(NAME_RE, 'must be 1-100 letters, digits, . _ - (no ":")').default('pullq'),
  request: requestSchema,
  auth: authSchema.default({ type: 'none' }),
  budget: budgetSchema.optional(),
  retry: z.strictObject({
    attempts: positiveInt.default(6),
    baseDelayMs: z.number().int().nonnegative('must be >= 0').default(1000),
    maxDelayMs: z.number().int().nonnegative('must be >= 0').default(300_000),
    /** The longest wait a server may impose (Retry-After, a rate-limit reset); longer ones are capped to it. */
    maxWaitMs: positiveInt.default(3_600_000),
  }).prefault({}),
  worker: z.strictObject({
    concurrency: positiveInt.max(4096, 'must be <= 4096').default(16),
    lockDurationMs: positiveInt.min(1000, 'must be >= 1000').default(30_000),
    shutdownTimeoutMs: z.number().int().nonnegative('must be >= 0').default(30_000),
    /** Serve /metrics, /healthz and /readyz on this port (off when unset). */
    metricsPort: z.number().int().min(1, 'must be 1-65535').max(65535, 'must be 1-65535').optional(),
  }).prefault({}),
  enqueue: z.strictObject({
    batchSize: positiveInt.max(5000, 'must be <= 5000').default(100),
  }).prefault({}),
  /** "id": one results line per ID (a paginated ID's pages merged into it); "page": one line per page. */
  output: z.strictObject({
    mode: z.enum(['id', 'page']).default('id'),
    /** Keep only these JSON fields of each body (dot paths, e.g. "owner.login"); the rest is not stored. */
    select: z.array(z.string().regex(/^[^.\s]+(\.[^.\s]+)*$/, 'must be a dot path of field names, e.g. "owner.login"')).min(1, 'must name at least one field').optional(),
    /** A 304 (request.conditional) is written with the data of the last complete run instead of without data. */
    carryUnchanged: z.boolean().default(false),
    /**
     * Mode "id" with pagination: an ID whose page bodies add up to more than this (bytes) fails body_too_large,
     * so its merged line stays far below what one JSON string (~512 M characters) and PostgreSQL's jsonb (255 MB) hold.
     */
    maxMergedBytes: positiveInt.default(64 * 1024 * 1024),
  }).prefault({}),
  sink: z.discriminatedUnion('type', [
    z.strictObject({
      type: z.literal('file'),
      dir: nonEmpty.default('./out'),
      /** "gzip": results.jsonl.gz and failed.jsonl.gz (summary.json stays plain); omit for plain .jsonl. */
      compress: z.enum(['gzip'], { error: (i) => `must be "gzip" (or omitted for plain .jsonl), got ${JSON.stringify(i.input)}` }).optional(),
    }),
    z.strictObject({
      type: z.literal('postgres'),
      url: nonEmpty,
      table: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, 'must be a plain SQL identifier').default('pullq_results'),
      // Named rather than "unknown key": a user moving from files to PostgreSQL learns why it went.
      compress: z.custom<never>(() => false, 'only the file sink compresses (PostgreSQL compresses large jsonb itself); remove it').optional(),
    }),
  ]).default({ type: 'file', dir: './out' }),
}).superRefine((c, ctx) => {
  // RFC 9110 §13.1.2: If-None-Match on a POST asks for 412 when it matches, never 304.
  if (c.request.conditional && c.request.method === 'POST') ctx.addIssue({ code: 'custom', path: ['request', 'conditional'], message: 'needs method GET or HEAD (a POST with If-None-Match answers 412, not 304)' });
  if (c.output.carryUnchanged && !c.request.conditional) ctx.addIssue({ code: 'custom', path: ['output', 'carryUnchanged'], message: 'needs request.conditional: true' });
});

type RawConfig = z.infer<typeof configSchema>;

/** A config as written (a pullq.config.json's contents, or an object in code): what parseConfig accepts, with every default optional. */
export type ConfigInput = z.input<typeof configSchema>;

/** A credential as the config names it, before it becomes a request decoration. */
export interface CredentialConfig {
  kind: 'header' | 'query' | 'basic' | 'oauth2' | 'login' | 'oauth1' | 'custom';
  /**
   * What names it (its fingerprint is an HMAC of `user` and this): the token, password, client secret
   * ("" for a public client), the consumer and token secrets (each URI-encoded, joined by &), or the custom credential's JSON. Never logged, never in Redis.
   */
  secret: string;
  /** basic, login: the username; oauth2: the client id; oauth1: the consumer key. */
  user?: string;
  name?: string;
  budget?: Budget;
  /** Where it came from: `pullq credentials` says. */
  source?: 'config' | 'tokensFile' | 'credentialsFile' | 'library';
  /** oauth2: how the client authenticates at the token endpoint (resolved from auth.authMethod and what the client has). */
  authMethod?: 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt' | 'none';
  /** oauth2: the refresh token to start from (grant refresh_token). */
  refreshToken?: string;
  /** oauth2: the private key's text (PEM or JWK), read from privateKeyFile when given so. */
  privateKey?: string;
  keyId?: string;
  algorithm?: string;
  /** oauth2 jwt_bearer: the assertion's subject. */
  subject?: string;
  /** oauth1: the consumer secret (`secret` holds it with the token secret, for the fingerprint). */
  consumerSecret?: string;
  /** oauth1: the token and its secret (three-legged). */
  token?: string;
  tokenSecret?: string;
  /** custom: the credential object as configured, handed to sign(). */
  entry?: Readonly<Record<string, unknown>>;
}

export type Config = Omit<RawConfig, 'auth'> & {
  auth: RawConfig['auth'];
  /** Every credential of the pool, in config order (empty for auth "none"). */
  credentials: CredentialConfig[];
  /** Absolute path of the config file, or null when built in code. */
  file: string | null;
};

/** Values pullq takes from the environment, read once here. */
export interface RuntimeEnv {
  configPath?: string;
  redisUrl?: string;
  logLevel?: string;
  /** `pullq dashboard`: the basic-auth password every route asks for, when set. */
  dashboardPassword?: string;
  /** `pullq login`'s wait for the browser's redirect, ms (PULLQ_LOGIN_TIMEOUT_MS; for tests; default 5 minutes). */
  loginTimeoutMs?: number;
  /** How often a watched credentials file is read, ms (PULLQ_CREDENTIALS_POLL_MS; for tests; default 2 s). */
  credentialsPollMs?: number;
  vars: Record<string, string | undefined>;
}

/** Snapshot of the environment variables pullq understands. */
export function runtimeEnv(env: NodeJS.ProcessEnv = process.env): RuntimeEnv {
  return {
    configPath: env['PULLQ_CONFIG'] || undefined,
    redisUrl: env['REDIS_URL'] || undefined,
    logLevel: env['PULLQ_LOG_LEVEL'] || undefined,
    dashboardPassword: env['PULLQ_DASHBOARD_PASSWORD'] || undefined,
    loginTimeoutMs: /^\d+$/.test(env['PULLQ_LOGIN_TIMEOUT_MS'] ?? '') ? Number(env['PULLQ_LOGIN_TIMEOUT_MS']) : undefined,
    credentialsPollMs: /^[1-9]\d*$/.test(env['PULLQ_CREDENTIALS_POLL_MS'] ?? '') ? Number(env['PULLQ_CREDENTIALS_POLL_MS']) : undefined,
    vars: env,
  };
}

/** `--config`, then `$PULLQ_CONFIG`, then `./pullq.config.json`. */
export function resolveConfigPath(flag: string | undefined, env: RuntimeEnv = runtimeEnv()): string {
  return path.resolve(flag ?? env.configPath ?? 'pullq.config.json');
}

/** Reads, substitutes and validates a config file; throws ConfigError with one clear line. */
export function loadConfig(flag?: string, env: RuntimeEnv = runtimeEnv()): Config {
  const file = resolveConfigPath(flag, env);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const hint = flag === undefined && env.configPath === undefined ? ' (pass --config PATH or set PULLQ_CONFIG)' : '';
    throw new ConfigError(code === 'ENOENT' ? `config file not found: ${file}${hint}` : `cannot read config file ${file}: ${code ?? String(err)}`, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (err) {
    throw new ConfigError(`${file}: not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  return parseConfig(json, { file, env });
}

/** Validates an already-parsed config object (used by loadConfig, tests and the demo). */
export function parseConfig(json: unknown, options: { file?: string | null; env?: RuntimeEnv } = {}): Config {
  const env = options.env ?? runtimeEnv();
  const file = options.file ?? null;
  const where = file ? `${file}: ` : 'config: ';
  const substituted = substituteVars(json, env.vars, [], where);
  const parsed = configSchema.safeParse(substituted);
  if (!parsed.success) {
    throw new ConfigError(where + formatIssue(parsed.error.issues[0]!));
  }
  const raw = parsed.data;
  const baseDir = file ? path.dirname(file) : process.cwd();
  if (env.redisUrl) raw.redis.url = env.redisUrl;
  if (raw.sink.type === 'file') raw.sink.dir = path.resolve(baseDir, raw.sink.dir);
  // PLAINTEXT's signature is the consumer and token secrets themselves.
  if (raw.auth.type === 'oauth1' && raw.auth.signatureMethod === 'PLAINTEXT' && !secretsSafeOver(raw.request.url.replace(/\{[^}]*\}/g, 'x'))) {
    throw new ConfigError(`${where}request.url: ${MUST_BE_HTTPS.replace('must be https', 'must be https with auth.signatureMethod "PLAINTEXT"')}: PLAINTEXT sends the consumer and token secrets as the signature; use https or HMAC-SHA256`);
  }
  const credentials = credentialsOf(raw.auth, baseDir, where, env.vars);
  return { ...raw, credentials, file };
}

/** True for a loopback host as WHATWG URL gives it (hostname): localhost, 127.x.y.z, [::1]; not a name that merely starts with 127. */
export function isLoopbackHost(hostname: string): boolean {
  return /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])$/i.test(hostname);
}

/** Whether secrets may go to `url`: https, or plain http to a loopback host only (tests, a local IdP). */
export function secretsSafeOver(url: string): boolean {
  const u = new URL(url);
  return u.protocol === 'https:' || (u.protocol === 'http:' && isLoopbackHost(u.hostname));
}

const MUST_BE_HTTPS = 'must be https (plain http only for a loopback host: 127.0.0.1, localhost, [::1])';

type ListedAuth = Exclude<RawConfig['auth'], { type: 'none' }>;

/** Each auth type's inline list of credentials, and the schema of one entry (the same in its credentialsFile). */
const LISTS = {
  header: { key: 'tokens', entry: tokenEntry, what: 'token' },
  query: { key: 'tokens', entry: tokenEntry, what: 'token' },
  basic: { key: 'credentials', entry: basicCredentialSchema, what: 'credential' },
  oauth2: { key: 'clients', entry: oauth2ClientSchema, what: 'client' },
  login: { key: 'accounts', entry: loginAccountSchema, what: 'account' },
  oauth1: { key: 'credentials', entry: oauth1CredentialSchema, what: 'credential' },
  custom: { key: 'credentials', entry: customEntrySchema, what: 'credential' },
} as const satisfies Record<ListedAuth['type'], { key: string; entry: z.ZodType; what: string }>;

/** Where a config's credentials are read from when they are not inline: the file (absolute) and its key. */
export interface CredentialFile {
  key: 'tokensFile' | 'credentialsFile';
  file: string;
}

/** The file a config's credentials come from (auth.tokensFile or auth.credentialsFile), or null when they are inline: nothing to watch. */
export function credentialFileOf(config: Pick<Config, 'auth' | 'file'>): CredentialFile | null {
  const auth = config.auth as Partial<Record<'tokensFile' | 'credentialsFile', string>>;
  const base = config.file ? path.dirname(config.file) : process.cwd();
  if (auth.tokensFile) return { key: 'tokensFile', file: path.resolve(base, auth.tokensFile) };
  if (auth.credentialsFile) return { key: 'credentialsFile', file: path.resolve(base, auth.credentialsFile) };
  return null;
}

/**
 * Reads a config's credentials file again (auth.tokensFile or auth.credentialsFile), `${VAR}`s substituted from
 * `env`: the set it lists now, checked as at start-up. Throws a ConfigError that says why (cannot be read, not
 * JSON, an entry that fails the schema, lists nothing) without quoting the file. Inline credentials: the config's.
 */
export function readCredentialSet(config: Config, env: RuntimeEnv = runtimeEnv()): CredentialConfig[] {
  if (config.auth.type === 'none' || !credentialFileOf(config)) return config.credentials;
  const baseDir = config.file ? path.dirname(config.file) : process.cwd();
  return credentialsOf(config.auth, baseDir, config.file ? `${config.file}: ` : 'config: ', env.vars);
}

function credentialsOf(auth: RawConfig['auth'], baseDir: string, where: string, vars: Record<string, string | undefined>): CredentialConfig[] {
  if (auth.type === 'none') return [];
  checkAuth(auth, where);
  const list = LISTS[auth.type];
  const inline = (auth as unknown as Record<string, unknown[] | undefined>)[list.key];
  const tokensFile = auth.type === 'header' || auth.type === 'query' ? auth.tokensFile : undefined;
  const given = [inline && list.key, tokensFile && 'tokensFile', auth.credentialsFile && 'credentialsFile'].filter((k): k is string => !!k);
  if (given.length > 1) throw new ConfigError(`${where}auth: give either ${given.join(' or ')}, not both`);
  if (given.length === 0) {
    // A custom signer may need no credential object: one, {}.
    if (auth.type === 'custom') return credentialsFromEntries(auth, [{}], 'library', `${where}auth.credentials`, baseDir);
    throw new ConfigError(`${where}auth.${list.key}: required for auth type "${auth.type}" (or credentialsFile${list.key === 'tokens' ? ', or tokensFile' : ''})`);
  }
  if (inline) return credentialsFromEntries(auth, inline, auth.type === 'custom' ? 'library' : 'config', `${where}auth.${list.key}`, baseDir);
  if (tokensFile) {
    const file = path.resolve(baseDir, tokensFile);
    return credentialsFromEntries(auth, readTokensFile(file, `${where}auth.tokensFile ${file}`), 'tokensFile', `${where}auth.tokensFile ${file}: `, baseDir);
  }
  const file = path.resolve(baseDir, auth.credentialsFile!);
  const at = `${where}auth.credentialsFile ${file}`;
  return credentialsFromEntries(auth, readCredentialsFile(file, at, list, vars), 'credentialsFile', `${at}: `, baseDir);
}

/** What an auth needs besides its credentials, checked once per set (every reload too). */
function checkAuth(auth: ListedAuth, where: string): void {
  // oauth4webapi sends client secrets, assertions and tokens over plain http only to a loopback host.
  if (auth.type === 'oauth2' && !secretsSafeOver(auth.tokenUrl)) throw new ConfigError(`${where}auth.tokenUrl: ${MUST_BE_HTTPS}`);
  if (auth.type === 'login') {
    if (!secretsSafeOver(auth.loginUrl)) throw new ConfigError(`${where}auth.loginUrl: ${MUST_BE_HTTPS}: the password is sent in it`);
    // A form has fields: the body must be an object (JSON mode sends any JSON as it is).
    if (auth.form && (auth.body === null || typeof auth.body !== 'object' || Array.isArray(auth.body))) throw new ConfigError(`${where}auth.body: must be an object of form fields with form: true, e.g. { "username": "{username}", "password": "{password}" }`);
  }
}

/**
 * A credentials file's entries, each checked with the inline list's entry schema: a ConfigError naming the file
 * and the entry's index when one is not, when the file cannot be read, is not a JSON array, or lists nothing.
 * Never quotes the file (JSON.parse's message would).
 */
function readCredentialsFile(file: string, at: string, list: (typeof LISTS)[ListedAuth['type']], vars: Record<string, string | undefined>): unknown[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`${at}: cannot read it: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch {
    throw new ConfigError(`${at}: not valid JSON (give a JSON array of ${list.what}s)`);
  }
  if (!Array.isArray(json)) throw new ConfigError(`${at}: must be a JSON array of ${list.what}s`);
  if (json.length === 0) throw new ConfigError(`${at}: lists no ${list.what}s`);
  const substituted = substituteVars(json, vars, [], `${at}: `) as unknown[];
  const parsed = z.array(list.entry as z.ZodType).safeParse(substituted);
  if (!parsed.success) throw new ConfigError(`${at}: ${formatIssue(parsed.error.issues[0]!)}`);
  return parsed.data;
}

/**
 * One list of entries (inline, or from a file) as the pool's credentials; `at` names the list in messages
 * ("…: auth.clients" + ".0.clientSecret: …"; a file's "…: auth.credentialsFile F: " + "0.clientSecret: …").
 */
function credentialsFromEntries(auth: ListedAuth, entries: readonly unknown[], source: NonNullable<CredentialConfig['source']>, at: string, baseDir: string): CredentialConfig[] {
  const item = (i: number) => (at.endsWith(': ') ? `${at}${i}` : `${at}.${i}`);
  switch (auth.type) {
    case 'header':
    case 'query':
      return (entries as z.infer<typeof tokenEntry>[]).map((entry) =>
        typeof entry === 'string'
          ? { kind: auth.type, secret: entry, source }
          : { kind: auth.type, secret: entry.token, name: entry.name, budget: entry.budget, source },
      );
    case 'basic':
      return (entries as z.infer<typeof basicCredentialSchema>[]).map((c) => ({ kind: 'basic', user: c.username, secret: c.password, name: c.name, budget: c.budget, source }));
    case 'oauth2':
      return (entries as z.infer<typeof oauth2ClientSchema>[]).map((c, i) => ({ ...oauth2CredentialOf(auth, c, item(i), baseDir), source }));
    case 'login':
      return (entries as z.infer<typeof loginAccountSchema>[]).map((a) => ({ kind: 'login', user: a.username, secret: a.password, name: a.name, budget: a.budget, source }));
    case 'oauth1':
      return (entries as z.infer<typeof oauth1CredentialSchema>[]).map((c, i) => {
        if ((c.token === undefined) !== (c.tokenSecret === undefined)) {
          throw new ConfigError(`${item(i)}.${c.token === undefined ? 'token' : 'tokenSecret'}: required with ${c.token === undefined ? 'tokenSecret' : 'token'} (give both, or neither for two-legged signing)`);
        }
        // The fingerprint's secret: both secrets, each encoded so that an "&" in one cannot make two pairs alike.
        const secret = `${encodeURIComponent(c.consumerSecret)}&${encodeURIComponent(c.tokenSecret ?? '')}`;
        return { kind: 'oauth1', user: c.consumerKey, secret, consumerSecret: c.consumerSecret, token: c.token, tokenSecret: c.tokenSecret, name: c.name, budget: c.budget, source };
      });
    case 'custom':
      return (entries as Record<string, unknown>[]).map((c) => {
        const { name, budget, ...rest } = c as { name?: string; budget?: Budget } & Record<string, unknown>;
        return { kind: 'custom', secret: JSON.stringify(rest, keyMaterial), name, budget, entry: c, source };
      });
  }
}

/** JSON.stringify's replacer for a custom credential's fingerprint: a KeyObject (JSON "{}") by its key material. */
function keyMaterial(_key: string, value: unknown): unknown {
  if (!(value instanceof KeyObject)) return value;
  return value.type === 'secret' ? value.export().toString('base64') : value.export({ format: 'jwk' });
}

type OAuth2Auth = Extract<RawConfig['auth'], { type: 'oauth2' }>;

/** One OAuth2 client as a credential, its grant's needs checked (a ConfigError names the key). */
function oauth2CredentialOf(auth: OAuth2Auth, c: z.infer<typeof oauth2ClientSchema>, at: string, baseDir: string): CredentialConfig {
  if (c.privateKey && c.privateKeyFile) throw new ConfigError(`${at}: give either privateKey or privateKeyFile, not both`);
  let privateKey = c.privateKey;
  if (c.privateKeyFile) {
    const file = path.resolve(baseDir, c.privateKeyFile);
    try {
      privateKey = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`${at}.privateKeyFile: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, { cause: err });
    }
  }
  let keyId = c.keyId;
  if (privateKey !== undefined) {
    const key = privateKeyOf(privateKey, `${at}.${c.privateKeyFile ? 'privateKeyFile' : 'privateKey'}`);
    if (key.clientEmail !== undefined && key.clientEmail !== c.clientId) throw new ConfigError(`${at}.clientId: must be the service-account key file's client_email (${key.clientEmail})`);
    privateKey = key.text;
    keyId ??= key.keyId;
    const misfit = c.algorithm ? algorithmMisfit(c.algorithm, key.type, key.curve) : undefined;
    if (misfit) throw new ConfigError(`${at}.algorithm: ${c.algorithm} cannot sign with ${misfit}; give ${fittingAlgorithms(key.type, key.curve)}, or leave algorithm out`);
  }
  const method = auth.authMethod ?? (privateKey && auth.grant !== 'jwt_bearer' ? 'private_key_jwt' : c.clientSecret ? 'client_secret_basic' : 'none');
  if ((method === 'client_secret_basic' || method === 'client_secret_post') && !c.clientSecret) throw new ConfigError(`${at}.clientSecret: required with authMethod ${method}`);
  if (method === 'private_key_jwt' && !privateKey) throw new ConfigError(`${at}.privateKey: required with authMethod private_key_jwt (or privateKeyFile)`);
  if (auth.grant === 'jwt_bearer' && !privateKey) throw new ConfigError(`${at}.privateKey: required with grant jwt_bearer (or privateKeyFile)`);
  if (auth.grant === 'client_credentials' && method === 'none') throw new ConfigError(`${at}.clientSecret: required with grant client_credentials (or privateKey)`);
  if (auth.grant === 'refresh_token' && !c.refreshToken) throw new ConfigError(`${at}.refreshToken: required with grant refresh_token`);
  if (auth.grant === 'authorization_code' && !auth.authorizeUrl) throw new ConfigError(`${where(at)}auth.authorizeUrl: required with grant authorization_code`);
  return {
    // A client without a secret that signs with a key: the key names it, and seals its cached tokens.
    kind: 'oauth2', user: c.clientId, secret: c.clientSecret ?? privateKey ?? '', name: c.name, budget: c.budget, source: 'config', authMethod: method,
    refreshToken: c.refreshToken, privateKey, keyId, algorithm: c.algorithm, subject: c.subject,
  };
}

/**
 * A client's private key text, checked at load time so a bad key is a config error, not a quarantine: a PEM
 * private key (literal "\\n" as in environment variables and Google key files become newlines), a JWK with its
 * private part `d`, or a Google service-account key file (its private_key, private_key_id as the key id, and
 * client_email, which must be the clientId). Messages never quote the text (JSON.parse's would).
 */
function privateKeyOf(raw: string, at: string): { text: string; keyId?: string; clientEmail?: string; type?: string; curve?: string } {
  const text = raw.trim();
  if (text.startsWith('{')) {
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw new ConfigError(`${at}: not valid JSON (a JWK or a service-account key file); give a JWK, a PEM, or the file`);
    }
    if (typeof json['private_key'] === 'string' && typeof json['client_email'] === 'string') {
      const key = privateKeyOf(json['private_key'], `${at} (private_key)`);
      return { text: key.text, type: key.type, curve: key.curve, clientEmail: json['client_email'], ...(typeof json['private_key_id'] === 'string' ? { keyId: json['private_key_id'] } : {}) };
    }
    if (typeof json['kty'] !== 'string') throw new ConfigError(`${at}: a JSON key must be a JWK (with "kty") or a service-account key file (private_key, client_email)`);
    if (typeof json['d'] !== 'string') throw new ConfigError(`${at}: the JWK has no "d": that is a public key; give the private one`);
    return { text, ...keyTypeOf(checkKey(() => createPrivateKey({ key: json as never, format: 'jwk' }), at)) };
  }
  const pem = text.replace(/\\n/g, '\n');
  return { text: pem, ...keyTypeOf(checkKey(() => createPrivateKey(pem), at)) };
}

function keyTypeOf(k: KeyObject): { type?: string; curve?: string } {
  return { ...(k.asymmetricKeyType ? { type: k.asymmetricKeyType } : {}), ...(k.asymmetricKeyDetails?.namedCurve ? { curve: k.asymmetricKeyDetails.namedCurve } : {}) };
}

/** The key types (node's asymmetricKeyType, and the EC curve) each JWS algorithm signs with. */
const ALGORITHM_KEYS: Record<string, { types: string[]; curve?: string }> = {
  RS256: { types: ['rsa'] }, RS384: { types: ['rsa'] }, RS512: { types: ['rsa'] },
  PS256: { types: ['rsa', 'rsa-pss'] }, PS384: { types: ['rsa', 'rsa-pss'] }, PS512: { types: ['rsa', 'rsa-pss'] },
  ES256: { types: ['ec'], curve: 'prime256v1' }, ES384: { types: ['ec'], curve: 'secp384r1' }, ES512: { types: ['ec'], curve: 'secp521r1' },
  EdDSA: { types: ['ed25519', 'ed448'] },
};
const CURVE_NAMES: Record<string, string> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' };

/** Why `algorithm` cannot sign with a key of this type (e.g. "an RSA key"), or undefined when it can. */
export function algorithmMisfit(algorithm: string, type: string | undefined, curve: string | undefined): string | undefined {
  const want = ALGORITHM_KEYS[algorithm];
  if (!want || type === undefined) return undefined;
  if (want.types.includes(type) && (want.curve === undefined || want.curve === curve)) return undefined;
  if (type === 'ec') return `an EC ${CURVE_NAMES[curve ?? ''] ?? curve ?? 'unknown-curve'} key`;
  return type === 'rsa' || type === 'rsa-pss' ? 'an RSA key' : `an ${type === 'ed25519' ? 'Ed25519' : type} key`;
}

function fittingAlgorithms(type: string | undefined, curve: string | undefined): string {
  return Object.keys(ALGORITHM_KEYS).filter((a) => algorithmMisfit(a, type, curve) === undefined).join(' or ');
}

function checkKey(create: () => KeyObject, at: string): KeyObject {
  try {
    return create();
  } catch (err) {
    // node's message names the decoder's complaint, never the key.
    throw new ConfigError(`${at}: not a usable private key (a PEM "BEGIN PRIVATE KEY", or a JWK): ${(err as Error).message}`);
  }
}

/** The "file: " part of a path like "file: auth.clients.0". */
function where(at: string): string {
  return at.slice(0, at.indexOf('auth.'));
}

/** A tokens file's tokens (one a line; blank lines and # comments skipped); `at` names it ("…: auth.tokensFile F"). */
function readTokensFile(file: string, at: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`${at}: cannot read it: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, { cause: err });
  }
  const tokens = text.replace(/^\uFEFF/, '').split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  if (tokens.length === 0) throw new ConfigError(`${at}: lists no tokens`);
  return tokens;
}

/** Replaces `${VAR}` in every string; an unset variable is an error naming it and the path. */
function substituteVars(value: unknown, vars: Record<string, string | undefined>, at: (string | number)[], where: string): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
      const v = vars[name];
      if (v === undefined) throw new ConfigError(`${where}${formatPath(at)}: environment variable ${name} is not set`);
      return v;
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => substituteVars(v, vars, [...at, i], where));
  // Plain objects only: a library config may hold functions (a custom signer), class instances (a KeyObject,
  // a Buffer) in a custom credential: those are kept as they are.
  if (value !== null && typeof value === 'object' && isPlainObject(value)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substituteVars(v, vars, [...at, k], where)]));
  }
  return value;
}

function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

function formatPath(at: readonly PropertyKey[]): string {
  return at.length === 0 ? '(root)' : at.map(String).join('.');
}

function formatIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((k) => `${formatPath([...issue.path, k])}: unknown key`).join('; ');
  }
  if (issue.code === 'invalid_union' && 'discriminator' in issue && issue.discriminator) {
    return `${formatPath(issue.path)}: ${issue.message.replace('Invalid discriminator value', 'unknown type')}`;
  }
  if (issue.code === 'invalid_key') {
    // A record's key failed its schema (request.headers: a header name): say that schema's words.
    return `${formatPath(issue.path)}: ${issue.issues[0]?.message ?? issue.message}`;
  }
  if (issue.code === 'invalid_type') {
    return `${formatPath(issue.path)}: ${/received undefined/.test(issue.message) ? 'required' : `must be ${article(issue.expected)}, ${issue.message.replace(/^.*received /, 'got ')}`}`;
  }
  return `${formatPath(issue.path)}: ${issue.message}`;
}

function article(expected: string): string {
  return /^[aeiou]/.test(expected) ? `an ${expected}` : `a ${expected}`;
}
