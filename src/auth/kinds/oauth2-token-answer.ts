/**
 * A token-endpoint answer without its ID token: pullq uses only the access and refresh tokens, and an ID
 * token's `iss` is often named unlike the token endpoint's origin (Google's), which oauth4webapi would
 * refuse after the server already acted: rotated the refresh token (oauth2-refresh-grant.ts), or spent the
 * authorization code, which works once (oauth2-authorization-code.ts). Only the headers oauth4webapi reads
 * are kept (the body changed: its length and encoding headers no longer hold). Reading the body can fail
 * (a cut connection): thrown.
 */
export async function withoutIdToken(res: Response): Promise<Response> {
  const text = await res.text();
  let out = text;
  try {
    const json = JSON.parse(text) as Record<string, unknown>;
    if (json && typeof json === 'object' && 'id_token' in json) {
      delete json['id_token'];
      out = JSON.stringify(json);
    }
  } catch {
    // Not JSON: oauth4webapi says so.
  }
  const headers = new Headers();
  for (const name of ['content-type', 'www-authenticate', 'dpop-nonce', 'cache-control']) {
    const v = res.headers.get(name);
    if (v !== null) headers.set(name, v);
  }
  return new Response(out, { status: res.status, statusText: res.statusText, headers });
}
