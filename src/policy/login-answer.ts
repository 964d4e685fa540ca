import { valueAt } from './next-page.js';

// A login endpoint (auth type "login", issue #20): the body pullq posts for an account, and what the
// endpoint's answer means. Pure: test/login-answer.test.ts is the table. No secret ever reaches a
// reason or a message made here: they name the status, the path, never the body.

/** `{username}` and `{password}`: the only placeholders of a login body. */
const LOGIN_PLACEHOLDER_RE = /\{(username|password)\}/g;

/**
 * The login body for one account: every string of the JSON template with `{username}` and `{password}`
 * replaced (in one pass, so a password holding "{username}" stays as it is), as JSON string content,
 * never spliced into JSON text. Keys, numbers, booleans and any other `{…}` stay as written.
 */
export function renderLoginBody(template: unknown, account: { username: string; password: string }): unknown {
  if (typeof template === 'string') return template.replace(LOGIN_PLACEHOLDER_RE, (_, name: 'username' | 'password') => account[name]);
  if (Array.isArray(template)) return template.map((v) => renderLoginBody(v, account));
  if (template !== null && typeof template === 'object') return Object.fromEntries(Object.entries(template).map(([k, v]) => [k, renderLoginBody(v, account)]));
  return template;
}

/**
 * A rendered body as application/x-www-form-urlencoded (`form: true`): its top-level fields, strings as
 * they are, numbers and booleans as text, null as "", an object or array as its JSON.
 */
export function loginForm(body: unknown): string {
  const form = new URLSearchParams();
  if (body !== null && typeof body === 'object' && !Array.isArray(body)) {
    for (const [k, v] of Object.entries(body)) form.append(k, typeof v === 'string' ? v : v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v));
  }
  return form.toString();
}

/** What a login answer means for the account. */
export type LoginVerdict =
  | { kind: 'ok'; token: string; /** The lifetime read at expiresInPath (seconds, number or numeric string), else undefined. */ expiresIn?: unknown }
  /** Refused for good (wrong password, wrong URL): the account is quarantined with `reason` as its one line. */
  | { kind: 'refused'; reason: string }
  /** May pass (5xx, 429, 408, not JSON): tried again later. */
  | { kind: 'unavailable'; why: string };

/** Statuses that say the account (or what is sent for it) is wrong, not that the endpoint is down. */
const CREDENTIAL_REFUSALS = new Set([400, 401, 403, 422]);

/** A token that cannot stand in a header value (RFC 9110 §5.5: no CR, LF, NUL or other controls). */
const NOT_IN_HEADER = /[\u0000-\u0008\u000a-\u001f\u007f]/;

/**
 * The verdict on one login answer: its status and its body's text. 2xx with a string at tokenPath is
 * ok (the lifetime read at expiresInPath); 400/401/403/422 refuse the account (check its username and
 * password), 404 and a redirect refuse it too (check auth.loginUrl), as does a 2xx without a usable
 * token; 5xx, 429, 408 and an answer that is not JSON may pass.
 */
export function classifyLoginAnswer(status: number, body: string, paths: { tokenPath: string; expiresInPath?: string }): LoginVerdict {
  if (status >= 500 || status === 429 || status === 408) return { kind: 'unavailable', why: `login endpoint answered HTTP ${status}` };
  if (CREDENTIAL_REFUSALS.has(status)) return { kind: 'refused', reason: `login refused (HTTP ${status}): check its username and password` };
  if (status === 404) return { kind: 'refused', reason: 'login refused (HTTP 404): check auth.loginUrl' };
  if (status >= 300 && status < 400) return { kind: 'refused', reason: `login answered a redirect (HTTP ${status}): check auth.loginUrl (redirects are not followed)` };
  if (status < 200 || status >= 300) return { kind: 'refused', reason: `login refused (HTTP ${status})` };
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return { kind: 'unavailable', why: `login endpoint answered HTTP ${status} with a body that is not JSON` };
  }
  const token = valueAt(json, paths.tokenPath);
  if (typeof token !== 'string' || token === '') return { kind: 'refused', reason: `login answer has no token at tokenPath "${paths.tokenPath}": check auth.tokenPath` };
  if (NOT_IN_HEADER.test(token)) return { kind: 'refused', reason: `login answer's token at tokenPath "${paths.tokenPath}" holds a control character: it cannot be sent in a header` };
  return { kind: 'ok', token, expiresIn: paths.expiresInPath === undefined ? undefined : valueAt(json, paths.expiresInPath) };
}
