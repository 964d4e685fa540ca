import type { NormalizedOptions } from 'got';
import type { Credential } from '../auth/credential.js';

/**
 * A credential never follows a redirect to another origin (scheme, host or
 * port), whatever carries it: got 14 only drops `authorization` on a host or
 * port change, never a custom header or a query parameter, and not on https→http.
 */
export function stripCredentialOffOrigin(options: NormalizedOptions, origin: string, credential: Credential | undefined): void {
  if (!credential) return;
  const next = options.url instanceof URL ? options.url : new URL(String(options.url));
  if (next.origin === origin) return;
  for (const name of credential.headerNames) {
    for (const key of Object.keys(options.headers)) {
      if (key.toLowerCase() === name) delete options.headers[key];
    }
  }
  if (credential.queryParam && next.searchParams.has(credential.queryParam)) {
    next.searchParams.delete(credential.queryParam);
    options.url = next;
  }
}
