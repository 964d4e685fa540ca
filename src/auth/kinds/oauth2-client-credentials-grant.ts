import type { Got } from 'got';
import type { CredentialConfig } from '../../config.js';
import { OAuth2RefusedError, OAuth2UnavailableError } from '../credential-errors.js';
import type { FetchedToken } from '../fleet-token-source.js';
import type { OAuth2Auth } from './kind-context.js';

/** RFC 6749 §4.4: the client-credentials grant, the client authenticated by Basic or in the form. */
export async function clientCredentialsGrant(http: Got, auth: OAuth2Auth, c: CredentialConfig, label: string): Promise<FetchedToken> {
  const form: Record<string, string> = { grant_type: 'client_credentials' };
  if (auth.scope) form['scope'] = auth.scope;
  if (auth.audience) form['audience'] = auth.audience;
  const headers: Record<string, string> = { accept: 'application/json' };
  if (c.authMethod !== 'client_secret_post') {
    // RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
    const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
    headers['authorization'] = `Basic ${Buffer.from(`${enc(c.user!)}:${enc(c.secret)}`).toString('base64')}`;
  } else {
    form['client_id'] = c.user!;
    form['client_secret'] = c.secret;
  }
  let res;
  try {
    res = await http.post(auth.tokenUrl, { form, headers, responseType: 'text', followRedirect: false, throwHttpErrors: false });
  } catch (err) {
    // The got error carries the request (and the secret): keep only its code.
    throw new OAuth2UnavailableError(`OAuth2 client ${label}: token endpoint unreachable (${(err as { code?: string }).code ?? 'error'})`);
  }
  if (res.statusCode >= 500 || res.statusCode === 429) throw new OAuth2UnavailableError(`OAuth2 client ${label}: token endpoint answered ${res.statusCode}`);
  if (res.statusCode !== 200) throw new OAuth2RefusedError(`OAuth2 client ${label}: token endpoint refused the client (HTTP ${res.statusCode})`);
  let body: { access_token?: unknown; expires_in?: unknown };
  try {
    body = JSON.parse(res.body as string) as typeof body;
  } catch {
    throw new OAuth2UnavailableError(`OAuth2 client ${label}: token endpoint answered non-JSON`);
  }
  if (typeof body.access_token !== 'string' || body.access_token === '') throw new OAuth2RefusedError(`OAuth2 client ${label}: token response has no access_token`);
  return { token: body.access_token, expiresIn: body.expires_in };
}
