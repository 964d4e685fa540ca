import * as oauth from 'oauth4webapi';
import type { CredentialConfig } from '../../config.js';
import type { FetchedToken } from '../fleet-token-source.js';
import { authorizationServer, clientAuthLoader, endpointOptions } from './oauth2-client-auth.js';
import { callTokenEndpoint } from './oauth2-token-errors.js';
import type { OAuth2Auth } from './kind-context.js';

/**
 * RFC 6749 §4.4, through oauth4webapi: the client-credentials grant with auth.scope and auth.audience (Auth0 and
 * others want it) in the form, the client authenticated as its authMethod says (Basic, in the form, or a
 * private_key_jwt assertion signed afresh per call). Returns the issuer call FleetTokenSource makes once per lifetime.
 */
export function clientCredentialsGrant(auth: OAuth2Auth, c: CredentialConfig, label: string): () => Promise<FetchedToken> {
  const as = authorizationServer(auth.tokenUrl);
  const client: oauth.Client = { client_id: c.user! };
  const clientAuth = clientAuthLoader(c, `OAuth2 client ${label}`);
  const parameters: Record<string, string> = {};
  if (auth.scope) parameters['scope'] = auth.scope;
  if (auth.audience) parameters['audience'] = auth.audience;
  return () =>
    callTokenEndpoint(`OAuth2 client ${label}`, async () => {
      const response = await oauth.clientCredentialsGrantRequest(as, client, await clientAuth(), parameters, endpointOptions(auth.tokenUrl));
      return oauth.processClientCredentialsResponse(as, client, response);
    });
}
