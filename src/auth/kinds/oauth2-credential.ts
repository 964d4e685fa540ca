import type { CredentialConfig } from '../../config.js';
import { fingerprint, type Credential, type OutgoingRequest } from '../credential.js';
import { FleetTokenSource, type FetchedToken } from '../fleet-token-source.js';
import { clientCredentialsGrant } from './oauth2-client-credentials-grant.js';
import { jwtBearerGrant } from './oauth2-jwt-bearer-grant.js';
import type { KindContext, OAuth2Auth } from './kind-context.js';


/** The pool's OAuth2 clients: each a bearer token from the token endpoint, one fetch per client for the fleet. */
export function oauth2Credentials(auth: OAuth2Auth, credentials: readonly CredentialConfig[], ctx: KindContext): Credential[] {
  return credentials.map((c) => {
    const id = `fp-${fingerprint(c.secret, c.user ?? '', ctx.key)}`;
    const label = c.name ?? id;
    const source = new FleetTokenSource(
      { id, what: `OAuth2 client ${label}`, sealSecret: c.secret, sealSalt: c.user!, fetch: grantOf(auth, c, label, ctx) },
      ctx,
    );
    return {
      id,
      label,
      kind: 'oauth2',
      source: c.source ?? 'config',
      budget: c.budget,
      headerNames: ['authorization'],
      secrets: [c.secret],
      seenSecrets: () => source.seenTokens,
      endpointCalls: () => source.endpointCalls,
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

/** The issuer call of a client's grant (auth.grant): each grant in its own file. */
function grantOf(auth: OAuth2Auth, c: CredentialConfig, label: string, ctx: KindContext): () => Promise<FetchedToken> {
  switch (auth.grant) {
    case 'client_credentials':
      return clientCredentialsGrant(auth, c, label);
    case 'jwt_bearer':
      return jwtBearerGrant(auth, c, label);
    case 'refresh_token':
    case 'authorization_code':
      throw new Error(`oauth2 grant ${auth.grant}: being built (issue #20)`);
  }
}
