import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider, { type ClientMetadata, type Configuration } from 'oidc-provider';

// The certified OpenID provider (oidc-provider 9, in-process, on 127.0.0.1, a random port) as the
// authorization server of the OAuth2 tests, with a resource API beside it:
// - clients per test: confidential (a secret, client_secret_basic or _post) or public
//   (token_endpoint_auth_method 'none'); grants authorization_code + refresh_token;
// - refresh tokens rotated at every use (rotateRefreshToken: true). oidc-provider 9 on the reuse of a
//   rotated (consumed) refresh token: answers invalid_grant "refresh token already used", destroys that
//   token and revokes the whole grant (lib/actions/grants/refresh_token.js), so the newest refresh token
//   and the grant's access tokens stop working too;
// - access tokens opaque, living `accessTokenTtlS` seconds; offline_access; PKCE (S256) required;
//   devInteractions on (its own login and consent pages: any login name, any password);
// - mintRefreshToken(): a grant and a refresh token for an account and a client through the
//   provider's own models (Grant, RefreshToken), no browser;
// - GET /items/:id answers {"id": ...} only to a Bearer access token the provider currently holds
//   (AccessToken.find, not expired), else 401;
// - counters: token-endpoint calls by grant, refresh tokens presented again (replays), invalid_grants.
// oidc-provider 9.13 prints "Unsupported runtime. Use Node.js v22.x LTS" on Node 20 (a warning at import):
// everything used here works on Node 20.

export interface OidcClient {
  clientId: string;
  /** Absent: a public client (token_endpoint_auth_method 'none'). */
  clientSecret?: string;
  authMethod?: 'client_secret_basic' | 'client_secret_post' | 'none';
  redirectUris?: string[];
}

export interface OidcServerOptions {
  clients: OidcClient[];
  /** Access token lifetime, seconds (ttl.AccessToken); default 3. */
  accessTokenTtlS?: number;
  /** Refresh token lifetime, seconds; default a day. */
  refreshTokenTtlS?: number;
  /** Milliseconds the resource API waits before answering; default 0. */
  latencyMs?: number;
}

export interface OidcCounters {
  /** Token-endpoint requests by grant_type (refresh_token, authorization_code, …). */
  tokenCalls: Record<string, number>;
  /** Refresh tokens presented at the token endpoint more than once (each extra presentation counts). */
  refreshReused: number;
  /** Token-endpoint answers with error invalid_grant. */
  invalidGrants: number;
  /** Token-endpoint answers with error invalid_client. */
  invalidClients: number;
  /** Resource API answers: 200s and 401s; ids served (id -> times). */
  apiOk: number;
  api401: number;
  served: Map<string, number>;
  /** Epoch ms of each refresh_token grant call that answered 200. */
  refreshedAt: number[];
  /** Every access and refresh token the token endpoint handed out (for the secrets test). */
  issued: string[];
  /** Epoch ms of the resource API's first and last 200 (0: none yet). */
  firstOkAt: number;
  lastOkAt: number;
}

export interface OidcServer {
  /** http://127.0.0.1:<port>: the issuer, and the resource API's origin. */
  url: string;
  issuer: string;
  tokenUrl: string;
  authorizeUrl: string;
  provider: Provider;
  counters: OidcCounters;
  /** A grant (openid offline_access) and a refresh token for `accountId` and `clientId`, no browser. */
  mintRefreshToken(clientId: string, accountId?: string): Promise<string>;
  /** Revokes the grant that `refreshToken` belongs to (its refresh and access tokens stop working). */
  revokeGrantOf(refreshToken: string): Promise<void>;
  /** Whether a refresh token is still usable at the provider (found, not consumed, not expired). */
  refreshTokenUsable(refreshToken: string): Promise<boolean>;
  close(): Promise<void>;
}

const DEFAULT_REDIRECT = 'http://127.0.0.1:8976/callback';

export async function startOidcServer(options: OidcServerOptions): Promise<OidcServer> {
  const counters: OidcCounters = { tokenCalls: {}, refreshReused: 0, invalidGrants: 0, invalidClients: 0, apiOk: 0, api401: 0, served: new Map(), refreshedAt: [], issued: [], firstOkAt: 0, lastOkAt: 0 };
  const presented = new Set<string>();
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const clients: ClientMetadata[] = options.clients.map((c) => {
    const method = c.authMethod ?? (c.clientSecret === undefined ? 'none' : 'client_secret_basic');
    return {
      client_id: c.clientId,
      ...(c.clientSecret !== undefined ? { client_secret: c.clientSecret } : {}),
      token_endpoint_auth_method: method,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: c.redirectUris ?? [DEFAULT_REDIRECT],
      // A loopback redirect (RFC 8252) is allowed for a native client; pullq login is one.
      application_type: 'native',
    };
  });

  const configuration: Configuration = {
    clients,
    findAccount: (_ctx, sub) => ({ accountId: sub, claims: () => ({ sub }) }),
    scopes: ['openid', 'offline_access', 'read'],
    rotateRefreshToken: true,
    pkce: { required: () => true },
    features: { devInteractions: { enabled: true }, introspection: { enabled: true }, revocation: { enabled: true } },
    ttl: {
      AccessToken: options.accessTokenTtlS ?? 3,
      RefreshToken: options.refreshTokenTtlS ?? 86_400,
      AuthorizationCode: 60,
      Grant: 86_400,
      Session: 86_400,
      Interaction: 600,
      IdToken: 3600,
    },
    // Refresh tokens for any client allowed the refresh_token grant that asked for offline_access.
    issueRefreshToken: (_ctx, client, code) => client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access'),
    // Test keys are generated per run; cookies signed with a throwaway key.
    cookies: { keys: ['pullq-test-cookie-key'] },
  };
  // Its start-up warnings about the in-memory adapter, development keys and devInteractions are what a
  // test server wants: not printed (the "Unsupported runtime" warning at import stays).
  const warn = console.warn;
  console.warn = (...args: unknown[]) => {
    if (!String(args[0]).includes('quick start development-only')) warn(...args);
  };
  let provider: Provider;
  try {
    provider = new Provider(url, configuration);
  } finally {
    console.warn = warn;
  }
  // Plain http on loopback: the provider must not insist on https for its own cookies.
  provider.proxy = true;

  provider.use(async (ctx, next) => {
    const isToken = ctx.path === '/token' && ctx.method === 'POST';
    await next();
    if (!isToken) return;
    const params = (ctx.oidc?.params ?? {}) as Record<string, unknown>;
    const grant = typeof params['grant_type'] === 'string' ? params['grant_type'] : 'unknown';
    counters.tokenCalls[grant] = (counters.tokenCalls[grant] ?? 0) + 1;
    const rt = params['refresh_token'];
    if (typeof rt === 'string' && rt !== '') {
      const h = createHash('sha256').update(rt).digest('hex');
      if (presented.has(h)) counters.refreshReused++;
      presented.add(h);
    }
    const body = ctx.body as { error?: string; access_token?: unknown; refresh_token?: unknown } | undefined;
    for (const t of [body?.access_token, body?.refresh_token]) if (typeof t === 'string') counters.issued.push(t);
    if (body?.error === 'invalid_grant') counters.invalidGrants++;
    if (body?.error === 'invalid_client') counters.invalidClients++;
    if (grant === 'refresh_token' && ctx.status === 200) counters.refreshedAt.push(Date.now());
  });

  const callback = provider.callback();
  const latencyMs = options.latencyMs ?? 0;
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const m = /^\/items\/([^?]+)/.exec(req.url ?? '');
    if (!m) {
      callback(req, res);
      return;
    }
    void (async () => {
      const auth = req.headers['authorization'] ?? '';
      const token = auth.startsWith('Bearer ') ? auth.slice(7) : '';
      const at = token ? await provider.AccessToken.find(token) : undefined;
      if (latencyMs) await new Promise((r) => setTimeout(r, latencyMs));
      if (!at || at.isExpired) {
        counters.api401++;
        res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer error="invalid_token"' });
        res.end(JSON.stringify({ error: 'invalid_token' }));
        return;
      }
      const id = decodeURIComponent(m[1]!);
      counters.apiOk++;
      counters.lastOkAt = Date.now();
      counters.firstOkAt ||= counters.lastOkAt;
      counters.served.set(id, (counters.served.get(id) ?? 0) + 1);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id, account: at.accountId }));
    })().catch(() => {
      res.writeHead(500);
      res.end();
    });
  });

  return {
    url,
    issuer: url,
    tokenUrl: `${url}/token`,
    authorizeUrl: `${url}/auth`,
    provider,
    counters,
    async mintRefreshToken(clientId: string, accountId = 'user-1'): Promise<string> {
      const client = await provider.Client.find(clientId);
      if (!client) throw new Error(`no client ${clientId}`);
      const grant = new provider.Grant({ accountId, clientId });
      grant.addOIDCScope('openid offline_access');
      const grantId = await grant.save();
      const rt = new provider.RefreshToken({ accountId, client, grantId, scope: 'openid offline_access', gty: 'authorization_code', expiresWithSession: false });
      const value = await rt.save();
      counters.issued.push(value);
      return value;
    },
    async revokeGrantOf(refreshToken: string): Promise<void> {
      const rt = await provider.RefreshToken.find(refreshToken, { ignoreExpiration: true });
      if (!rt?.grantId) throw new Error('refresh token not found');
      const grant = await provider.Grant.find(rt.grantId);
      await grant?.destroy();
      await Promise.all([provider.RefreshToken.revokeByGrantId(rt.grantId), provider.AccessToken.revokeByGrantId(rt.grantId)]);
    },
    async refreshTokenUsable(refreshToken: string): Promise<boolean> {
      const rt = await provider.RefreshToken.find(refreshToken);
      return !!rt && rt.isValid;
    },
    async close(): Promise<void> {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
