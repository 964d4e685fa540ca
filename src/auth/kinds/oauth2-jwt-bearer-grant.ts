import { randomUUID } from 'node:crypto';
import * as oauth from 'oauth4webapi';
import { SignJWT } from 'jose';
import type { CredentialConfig } from '../../config.js';
import type { FetchedToken } from '../fleet-token-source.js';
import { authorizationServer, clientAuthLoader, endpointOptions, importPrivateKey, type SigningKey } from './oauth2-client-auth.js';
import { callTokenEndpoint } from './oauth2-token-errors.js';
import type { OAuth2Auth } from './kind-context.js';

export const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
/** Lifetime of an assertion (s): RFC 7523 §3 wants a short one; Google takes at most an hour. */
export const ASSERTION_LIFETIME_S = 300;

/** The claims of a JWT-bearer assertion (RFC 7523 §3): who signs, for whom, to which server, for how long, once. */
export function assertionClaims(input: { clientId: string; subject?: string; audience: string; scope?: string; nowS: number; jti: string }): Record<string, string | number> {
  return {
    iss: input.clientId,
    sub: input.subject ?? input.clientId,
    aud: input.audience,
    iat: input.nowS,
    exp: input.nowS + ASSERTION_LIFETIME_S,
    jti: input.jti,
    // Google's service accounts read the scope from the assertion; other servers from the form (sent there too).
    ...(input.scope ? { scope: input.scope } : {}),
  };
}

/**
 * RFC 7523 §2.1 (Google-style service accounts): a JWT signed with the client's private key, sent as
 * `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=…` through oauth4webapi. A fresh assertion
 * (new jti, iat) for each token request; the client authenticates too if its authMethod says so (else just its
 * client_id). `aud` is auth.audience, else the token endpoint's URL (Google's token_uri).
 */
export function jwtBearerGrant(auth: OAuth2Auth, c: CredentialConfig, label: string): () => Promise<FetchedToken> {
  const what = `OAuth2 client ${label}`;
  const as = authorizationServer(auth.tokenUrl);
  const client: oauth.Client = { client_id: c.user! };
  const clientAuth = clientAuthLoader(c, what);
  let key: Promise<SigningKey> | undefined;
  return () =>
    callTokenEndpoint(what, async () => {
      const k = await (key ??= importPrivateKey(c.privateKey!, c.algorithm, c.keyId, what));
      const claims = assertionClaims({ clientId: c.user!, subject: c.subject, audience: auth.audience ?? auth.tokenUrl, scope: auth.scope, nowS: Math.floor(Date.now() / 1000), jti: randomUUID() });
      const assertion = await new SignJWT(claims).setProtectedHeader({ alg: k.alg, typ: 'JWT', ...(k.kid ? { kid: k.kid } : {}) }).sign(k.key);
      const parameters: Record<string, string> = { assertion };
      if (auth.scope) parameters['scope'] = auth.scope;
      const response = await oauth.genericTokenEndpointRequest(as, client, await clientAuth(), JWT_BEARER_GRANT, parameters, endpointOptions(auth.tokenUrl));
      return oauth.processGenericTokenEndpointResponse(as, client, response);
    }, { invalid_grant: 'check the key, clientId (the iss), subject and audience of the assertion' });
}
