import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { credentialId } from '../auth/credential.js';
import { credentialKey } from '../auth/credential-key.js';
import {
  LOGIN_TIMEOUT_MS,
  LoginError,
  LoginTimeoutError,
  authorizationCodeAuth,
  authorizationRequest,
  exchangeCode,
  judgeCallback,
  loginClientIndex,
  loginServer,
  redirectUriOf,
} from '../auth/kinds/oauth2-authorization-code.js';
import { refreshTokenStoreOf } from '../auth/kinds/oauth2-credential.js';
import { createHttpClient } from '../jobs/http-client.js';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { queueKeys } from '../redis/keys.js';
import { retryRedis } from '../redis/redis-retry.js';
import type { Connected } from './pullq-context.js';

export interface LoginOptions {
  /** The client to log in: its name or clientId; default the only client (an InputError lists the names when there are several). */
  client?: string;
  /** Told the URL to open in a browser (it holds no secret), once pullq listens for the redirect. Default: logged at info. */
  onUrl?: (url: string, info: { client: string; redirectUri: string; timeoutMs: number }) => void;
  /** How long to wait for the redirect, ms; default 5 minutes. */
  timeoutMs?: number;
  /** Aborts the wait (nothing is stored). */
  signal?: AbortSignal;
}

export interface LoginResult {
  /** The client as pullq names it (as `pullq credentials` does): its name, else its fp- id. */
  client: string;
  /** Its credential id (the fingerprint its fleet state is kept under). */
  credential: string;
}

/** Per-token-request time-out of the code exchange, ms. */
const EXCHANGE_TIMEOUT_MS = 30_000;

/**
 * `pullq login`: the authorization code flow with PKCE for one client of an authorization_code config.
 * Listens on 127.0.0.1:<redirectPort> only, takes one /callback, exchanges the code and stores the
 * refresh token for the fleet (sealed), lifts the client's quarantine and drops its cached access token.
 * Throws LoginError (exit 1) or LoginTimeoutError (exit 2); nothing is stored then.
 */
export async function loginClient(c: Connected, config: Config, logger: Logger, options: LoginOptions = {}): Promise<LoginResult> {
  const auth = authorizationCodeAuth(config.auth);
  // Which client first: a config error needs no Redis.
  if (options.client === undefined) loginClientIndex(config.credentials, undefined);
  const key = await credentialKey(c.redis, config.queue);
  // The id and seal key the worker side reads the refresh token under (credentialId, refreshTokenStoreOf).
  const ids = config.credentials.map((x) => credentialId(x, key));
  const index = loginClientIndex(config.credentials.map((x, i) => ({ ...x, id: ids[i] })), options.client);
  const cred = config.credentials[index]!;
  const id = ids[index]!;
  // As the pool labels it (oauth2-credential.ts), so LoginResult.client matches `pullq credentials`.
  const label = cred.name ?? id;
  // The worker warns once that a public client without sealKey is sealed under the deployment key; login stays quiet.
  const store = refreshTokenStoreOf(auth, cred, { key, redis: c.redis, queue: config.queue, http: createHttpClient(config), logger: logger.child({}, { level: 'silent' }) });
  const timeoutMs = options.timeoutMs ?? LOGIN_TIMEOUT_MS;
  const redirectUri = redirectUriOf(auth.redirectPort);
  const request = await authorizationRequest(auth, cred.user!, redirectUri);

  let settle!: { resolve: (r: LoginResult) => void; reject: (e: unknown) => void };
  const done = new Promise<LoginResult>((resolve, reject) => (settle = { resolve, reject }));
  let taken = false;
  let timer: NodeJS.Timeout | undefined;
  const server = createServer((req, res) => {
    void handle(req, res);
  });
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', redirectUri);
    if (req.method !== 'GET' || url.pathname !== '/callback') return page(res, 404, 'Not found', 'pullq login waits for its redirect on /callback only.');
    if (taken) return page(res, 409, 'Already answered', 'This login already took its answer. You can close this tab.');
    taken = true;
    // The browser answered: the exchange has its own time-out, and must not be cut off half-stored.
    clearTimeout(timer);
    try {
      const judged = judgeCallback(loginServer(auth, url.searchParams), cred.user!, url.searchParams, request.state, label);
      if (judged.kind === 'error') throw judged.error;
      const tokens = await exchangeCode(loginServer(auth, url.searchParams), cred, judged.params, request, label, EXCHANGE_TIMEOUT_MS);
      // One MULTI: the token, its old marks (in flight, refused) cleared, the client's quarantine lifted.
      await store.write(tokens.refreshToken);
      // The old grant's access token goes too: the next request refreshes with the new grant.
      await retryRedis(() => c.redis.del(queueKeys(config.queue).oauth(id)));
      logger.info({ credential: id, client: label }, `login of client ${label}: refresh token stored for the fleet`);
      page(res, 200, `Logged in: ${label}`, 'pullq stored the refresh token for its workers. You can close this tab.');
      settle.resolve({ client: label, credential: id });
    } catch (err) {
      page(res, 400, 'Login failed', `${(err as Error).message}. You can close this tab.`);
      settle.reject(err);
    }
  };

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      const what = err.code === 'EADDRINUSE' ? `port ${auth.redirectPort} is in use` : `cannot listen on 127.0.0.1:${auth.redirectPort} (${err.code ?? err.message})`;
      reject(new LoginError('login_listen_failed', `pullq login: ${what}; free it, or set auth.redirectPort and register http://127.0.0.1:<port>/callback at the IdP`));
    });
    // Loopback only (RFC 8252 §8.3): nothing off this machine can hand pullq a code.
    server.listen(auth.redirectPort, '127.0.0.1', () => resolve());
  });
  timer = setTimeout(
    () => settle.reject(new LoginTimeoutError(`login of client ${label}: no answer on ${redirectUri} within ${Math.round(timeoutMs / 1000)} s; nothing stored, run pullq login again`)),
    timeoutMs,
  );
  // Once the answer is in, its exchange and store run to the end (they have their own time-outs).
  const onAbort = () => taken || settle.reject(new LoginError('login_aborted', `login of client ${label}: stopped before an answer came; nothing stored`));
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) onAbort();
  try {
    const info = { client: label, redirectUri: `http://127.0.0.1:${(server.address() as AddressInfo).port}/callback`, timeoutMs };
    if (options.onUrl) options.onUrl(request.url, info);
    else logger.info({ client: label, redirectUri }, `open this URL to log in client ${label}: ${request.url}`);
    return await done;
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
    // The answer page is on its way (connection: close); idle keep-alive sockets go now, the rest within a second.
    server.close();
    server.closeIdleConnections();
    setTimeout(() => server.closeAllConnections(), 1000).unref();
  }
}

/** The small page the browser shows after the redirect. */
function page(res: ServerResponse, status: number, title: string, text: string): void {
  const body = `<!doctype html><meta charset="utf-8"><title>${escapeHtml(title)}</title><body style="font-family:sans-serif;margin:3em"><h1>${escapeHtml(title)}</h1><p>${escapeHtml(text)}</p></body>\n`;
  // The redirect URL held the code: no caching, and no Referer to anything the page might load.
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'referrer-policy': 'no-referrer', connection: 'close' });
  res.end(body);
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}
