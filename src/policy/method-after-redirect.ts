/**
 * The method of the request a redirect leads to, as browsers do and RFC 9110 §15.4 permits:
 * 303 → GET (HEAD stays HEAD); 301 and 302 turn a POST into a GET (§15.4.2, §15.4.3: "for
 * historical reasons, a user agent MAY change the request method from POST to GET"); 307 and
 * 308 keep the method and the body (§15.4.8, §15.4.9). A GET here carries no body and none of
 * its content headers. got 14's own rule (without `methodRewriting`) rewrites only on a 303 and
 * keeps the content-type; with it, a HEAD would become a GET on a 301.
 */
export function methodAfterRedirect(method: string, status: number): string {
  const m = method.toUpperCase();
  if (status === 303) return m === 'HEAD' ? 'HEAD' : 'GET';
  if ((status === 301 || status === 302) && m === 'POST') return 'GET';
  return m;
}
