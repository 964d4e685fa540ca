import type { CredentialConfig } from '../../config.js';
import { RefreshScripts } from '../../redis/refresh-scripts.js';
import { credentialId, type Credential, type OutgoingRequest } from '../credential.js';
import { FleetTokenSource, type FetchedToken, type HeldLock } from '../fleet-token-source.js';
import { RecentValues } from '../recent-values.js';
import { RefreshTokenStore } from '../refresh-token-store.js';
import { clientCredentialsGrant } from './oauth2-client-credentials-grant.js';
import { jwtBearerGrant } from './oauth2-jwt-bearer-grant.js';
import { refreshGrant } from './oauth2-refresh-grant.js';
import type { KindContext, OAuth2Auth } from './kind-context.js';

/** The grants whose client holds a refresh token for the fleet (RefreshTokenStore). */
const REFRESH_GRANTS = new Set(['refresh_token', 'authorization_code']);

/** The pool's OAuth2 clients: each a bearer token from the token endpoint, one fetch per client for the fleet. */
export function oauth2Credentials(auth: OAuth2Auth, credentials: readonly CredentialConfig[], ctx: KindContext): Credential[] {
  return credentials.map((c, index) => {
    const id = credentialId(c, ctx.key);
    const label = c.name ?? id;
    const sealSecret = sealSecretOf(auth, c, label, ctx);
    const seenRefresh = new RecentValues();
    const configToken = auth.grant === 'refresh_token' ? c.refreshToken : undefined;
    const source = new FleetTokenSource(
      { id, what: `OAuth2 client ${label}`, sealSecret, sealSalt: c.user!, fetch: grantOf(auth, c, label, ctx, { id, index, sealSecret, seenRefresh }) },
      ctx,
    );
    return {
      id,
      label,
      kind: 'oauth2',
      source: c.source ?? 'config',
      budget: c.budget,
      headerNames: ['authorization'],
      secrets: [c.secret, c.refreshToken ?? '', auth.sealKey ?? ''].filter((s) => s !== ''),
      seenSecrets: () => [...source.seenTokens, ...seenRefresh],
      endpointCalls: () => source.endpointCalls,
      ...(configToken
        ? {
            async prepare(): Promise<void> {
              const store = new RefreshTokenStore(ctx.redis, ctx.queue, id, sealSecret, c.user!);
              if (await store.liftForNewSeed(store.seedOf(configToken))) ctx.logger.info({ credential: label }, `OAuth2 client ${label}: a new refreshToken in the config; quarantine lifted, the next refresh starts from it`);
            },
          }
        : {}),
      async apply(p: OutgoingRequest): Promise<OutgoingRequest> {
        return { ...p, headers: { ...p.headers, authorization: `Bearer ${await source.token()}` } };
      },
      async onUnauthorized(p: OutgoingRequest): Promise<boolean> {
        const used = p.headers['authorization']?.replace(/^Bearer /, '');
        return used ? source.invalidate(used) : true;
      },
    } satisfies Credential;
  });
}

/** What the refresh grants need besides the client: its id (Redis keys), seal key and the refresh tokens seen. */
interface RefreshFacts {
  id: string;
  /** The client's place in auth.clients. */
  index: number;
  /** What the client's tokens are sealed with in Redis (sealSecretOf). */
  sealSecret: string;
  /** Refresh tokens this process has held. */
  seenRefresh: RecentValues;
}

/** The issuer call of a client's grant (auth.grant): each grant in its own file. */
function grantOf(auth: OAuth2Auth, c: CredentialConfig, label: string, ctx: KindContext, f: RefreshFacts): (lock: HeldLock) => Promise<FetchedToken> {
  switch (auth.grant) {
    case 'refresh_token':
    case 'authorization_code':
      return refreshGrant({
        auth, c, label, index: f.index, logger: ctx.logger, seen: f.seenRefresh,
        store: new RefreshTokenStore(ctx.redis, ctx.queue, f.id, f.sealSecret, c.user!),
        scripts: new RefreshScripts(ctx.redis, ctx.queue, f.id),
      });
    case 'client_credentials':
      return clientCredentialsGrant(auth, c, label);
    case 'jwt_bearer':
      return jwtBearerGrant(auth, c, label);
  }
}

/**
 * The fleet's refresh-token store of one configured client, keyed and sealed as its credential is
 * (`pullq login` writes the refresh token it got here).
 */
export function refreshTokenStoreOf(auth: OAuth2Auth, c: CredentialConfig, ctx: KindContext): RefreshTokenStore {
  const id = credentialId(c, ctx.key);
  return new RefreshTokenStore(ctx.redis, ctx.queue, id, sealSecretOf(auth, c, c.name ?? id, ctx), c.user!);
}

/** Queues already warned that a public client's tokens are sealed under the deployment key (once per process). */
const warnedDeploymentSeal = new Set<string>();

/**
 * The key material a client's tokens (access and refresh) are sealed with in Redis: the client secret;
 * for a client without one (a public client, a private_key_jwt one) auth.sealKey, else the deployment
 * key (credential-key.ts), which lives in the same Redis: said once, as a warning.
 */
export function sealSecretOf(auth: OAuth2Auth, c: CredentialConfig, label: string, ctx: KindContext): string {
  if (c.secret) return c.secret;
  if (auth.sealKey) return auth.sealKey;
  if (REFRESH_GRANTS.has(auth.grant) && !warnedDeploymentSeal.has(ctx.queue)) {
    warnedDeploymentSeal.add(ctx.queue);
    ctx.logger.warn(
      { credential: label },
      `OAuth2 client ${label} has no clientSecret: its refresh token is sealed in Redis under the deployment key kept in the same Redis; set auth.sealKey ("\${VAR}") so a Redis dump alone cannot open it`,
    );
  }
  return ctx.key.toString('base64');
}
