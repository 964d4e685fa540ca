import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, exportPKCS8, generateKeyPair, jwtVerify, type JWK, type CryptoKey } from 'jose';

// oidc-provider ships no types: the few parts used here, typed locally (a computed specifier, so a
// declaration another file adds for the module cannot clash with these).
interface OidcClient {
  clientId: string;
}
interface OidcContext {
  path: string;
  status: number;
  body: unknown;
  oidc: { params?: Record<string, unknown>; client?: OidcClient };
}
interface ClientCredentialsToken {
  clientId: string;
  scope?: string;
  isExpired: boolean;
  expiration: number;
  save(): Promise<string>;
}
interface OidcProvider {
  use(middleware: (ctx: OidcContext, next: () => Promise<void>) => Promise<void>): void;
  registerGrantType(name: string, handler: (ctx: OidcContext) => Promise<void>, params: string[]): void;
  callback(): (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void;
  ClientCredentials: { new (input: { client: OidcClient; scope?: string }): ClientCredentialsToken; find(token: string): Promise<ClientCredentialsToken | undefined> };
}
const OIDC_PROVIDER: string = 'oidc-provider';
const oidc = (await import(OIDC_PROVIDER)) as { default: new (issuer: string, configuration: Record<string, unknown>) => OidcProvider; errors: { InvalidGrant: new (description: string) => Error } };
const Provider = oidc.default;
const errors = oidc.errors;

// The certified OpenID provider (oidc-provider 9, in-process) as the authorization server for the
// key-based OAuth2 tests: client credentials with private_key_jwt client authentication, and the
// JWT-bearer grant (RFC 7523 §2.1) registered as a custom grant type whose handler verifies the
// assertion with jose. Plus a resource API that answers only the provider's valid access tokens.
// (test/helpers/oidc-server.ts is another helper's, for the refresh-token flow.)

export const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

/** A key pair as a client holds it: the private key as PKCS #8 PEM and as a JWK, the public JWK for the server. */
export interface TestKey {
  pem: string;
  privateJwk: JWK;
  publicJwk: JWK;
  publicKey: CryptoKey;
}

export async function testKey(alg: 'RS256' | 'ES256', kid: string): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return {
    pem: await exportPKCS8(privateKey),
    privateJwk: { ...(await exportJWK(privateKey)), kid, alg },
    publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' },
    publicKey,
  };
}

export interface KeysClient {
  clientId: string;
  /** private_key_jwt: public keys registered for client authentication. */
  jwks?: JWK[];
  /** client_secret_basic instead. */
  secret?: string;
  grant: 'client_credentials' | 'jwt_bearer';
  /** jwt_bearer: the key the assertion must be signed with, and the subject it must name. */
  assertionKey?: CryptoKey;
  subject?: string;
}

export interface KeysProvider {
  issuer: string;
  tokenUrl: string;
  /** Resource API base URL: GET /items/{id} with a valid Bearer token and scope items:read. */
  apiUrl: string;
  /** Successful token answers per client id. */
  tokens: Map<string, number>;
  /** Refused token calls per client id ("?" when the client was not identified), with the OAuth2 error. */
  refusals: { client: string; error: string }[];
  /** Every assertion and client assertion received (to search for them in logs and Redis). */
  assertions: string[];
  /** The scopes the JWT-bearer grant saw, in the form and in the assertion. */
  scopesSeen: { form?: string; claim?: unknown }[];
  /** 2xx answers per ID, and 401s, of the resource API. */
  served: Map<string, number>;
  unauthorized(): number;
  close(): Promise<void>;
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

export async function startKeysProvider(options: { clients: KeysClient[]; ttlS: number; latencyMs?: number }): Promise<KeysProvider> {
  const idp = createServer();
  const port = await listen(idp);
  const issuer = `http://127.0.0.1:${port}`;
  const signing = await generateKeyPair('RS256', { extractable: true });
  const provider = new Provider(issuer, {
    clients: options.clients.map((c) => ({
      client_id: c.clientId,
      ...(c.secret ? { client_secret: c.secret, token_endpoint_auth_method: 'client_secret_basic' } : c.jwks ? { token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: c.jwks } } : { token_endpoint_auth_method: 'none' }),
      grant_types: [c.grant === 'jwt_bearer' ? JWT_BEARER : 'client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: 'items:read',
    })),
    jwks: { keys: [{ ...(await exportJWK(signing.privateKey)), kid: 'idp-1', alg: 'RS256', use: 'sig' }] },
    features: { clientCredentials: { enabled: true }, devInteractions: { enabled: false } },
    scopes: ['openid', 'items:read'],
    ttl: { ClientCredentials: options.ttlS },
  });
  const tokens = new Map<string, number>();
  const refusals: KeysProvider['refusals'] = [];
  const assertions: string[] = [];
  const scopesSeen: KeysProvider['scopesSeen'] = [];
  const seenJti = new Set<string>();
  const tokenUrl = `${issuer}/token`;

  provider.use(async (ctx, next) => {
    await next();
    if (ctx.path !== '/token') return;
    const params = (ctx.oidc?.params ?? {}) as Record<string, unknown>;
    for (const k of ['assertion', 'client_assertion']) if (typeof params[k] === 'string') assertions.push(params[k]);
    const client = ctx.oidc?.client?.clientId ?? (typeof params['client_id'] === 'string' ? params['client_id'] : '?');
    if (ctx.status === 200) tokens.set(client, (tokens.get(client) ?? 0) + 1);
    else refusals.push({ client, error: String((ctx.body as { error?: unknown } | undefined)?.error) });
  });

  // RFC 7523 §3: the assertion's signature, iss = the client, sub, aud = the token endpoint, exp (at most 5 minutes
  // after iat), a jti never seen before.
  provider.registerGrantType(
    JWT_BEARER,
    async (ctx) => {
      const client = ctx.oidc.client!;
      const spec = options.clients.find((c) => c.clientId === client.clientId);
      const assertion = ctx.oidc.params!['assertion'] as string | undefined;
      if (!spec?.assertionKey || !assertion) throw new errors.InvalidGrant('no assertion');
      let payload;
      try {
        ({ payload } = await jwtVerify(assertion, spec.assertionKey, { issuer: client.clientId, audience: tokenUrl, subject: spec.subject ?? client.clientId, requiredClaims: ['exp', 'iat', 'jti'] }));
      } catch {
        throw new errors.InvalidGrant('assertion not valid');
      }
      if (payload.exp! - payload.iat! > 300) throw new errors.InvalidGrant('assertion lives too long');
      if (seenJti.has(payload.jti!)) throw new errors.InvalidGrant('assertion replayed');
      seenJti.add(payload.jti!);
      const scope = ctx.oidc.params!['scope'] as string | undefined;
      scopesSeen.push({ form: scope, claim: payload['scope'] });
      const token = new provider.ClientCredentials({ client, scope: scope === 'items:read' ? scope : undefined });
      const value = await token.save();
      ctx.body = { access_token: value, token_type: 'Bearer', expires_in: token.expiration, scope: token.scope };
    },
    ['assertion', 'scope'],
  );
  idp.on('request', provider.callback());

  const served = new Map<string, number>();
  let unauthorized = 0;
  const api = createServer((req, res) => {
    void (async () => {
      const token = req.headers.authorization?.match(/^Bearer (.+)$/)?.[1];
      const found = token ? await provider.ClientCredentials.find(token) : undefined;
      if (!found || found.isExpired || !String(found.scope ?? '').split(' ').includes('items:read')) {
        unauthorized++;
        res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer error="invalid_token"' }).end('{"error":"invalid_token"}');
        return;
      }
      if (options.latencyMs) await new Promise((r) => setTimeout(r, options.latencyMs));
      const id = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname.replace(/^\/items\//, ''));
      served.set(id, (served.get(id) ?? 0) + 1);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id, client: found.clientId }));
    })();
  });
  const apiPort = await listen(api);
  const close = (s: Server) =>
    new Promise<void>((resolve) => {
      s.closeAllConnections();
      s.close(() => resolve());
    });
  return {
    issuer,
    tokenUrl,
    apiUrl: `http://127.0.0.1:${apiPort}`,
    tokens,
    refusals,
    assertions,
    scopesSeen,
    served,
    unauthorized: () => unauthorized,
    close: async () => {
      await close(api);
      await close(idp);
    },
  };
}
