import * as oauth from 'oauth4webapi';
import type { CredentialConfig } from '../../config.js';
import type { Logger } from '../../logger.js';
import type { CommitResult, RefreshScripts } from '../../redis/refresh-scripts.js';
import { retryRedis } from '../../redis/redis-retry.js';
import { OAuth2RefusedError, OAuth2UnavailableError } from '../credential-errors.js';
import type { FetchedToken, HeldLock } from '../fleet-token-source.js';
import type { RefreshTokenStore } from '../refresh-token-store.js';
import { authorizationServer, clientAuthOf, endpointOptions } from './oauth2-client-auth.js';
import { classifyFailure, newestRotation, planRefresh, recoveryHint, refusalReason, type RefreshOutcome } from './oauth2-refresh-policy.js';
import type { OAuth2Auth } from './kind-context.js';
import { withoutIdToken } from './oauth2-token-answer.js';

/** A token request's time-out; the refresh lock is extended past it before the request is sent. */
export const TOKEN_REQUEST_TIMEOUT_MS = 10_000;
/** How much longer than the request the lock lives (the answer stored, the mark resolved). */
const LOCK_MARGIN_MS = 5_000;
/** How long a commit that rotated the refresh token keeps storing it and waiting for a replica, holding the lock. */
const REPLICA_HOLD_MS = TOKEN_REQUEST_TIMEOUT_MS;
/** One wait for a replica's acknowledgement within it (ms). */
const REPLICA_WAIT_STEP_MS = 2_000;
/** Rotations a process remembers (refresh token sent → the one the server gave for it). */
const ROTATIONS_KEPT = 8;

export interface RefreshGrantInput {
  auth: OAuth2Auth;
  c: CredentialConfig;
  label: string;
  /** Its place in auth.clients (the refusal line names auth.clients[N].refreshToken). */
  index: number;
  store: RefreshTokenStore;
  scripts: RefreshScripts;
  logger: Logger;
  /** The last refresh tokens this process has held (scrubbed from any text; a RecentValues, bounded). */
  seen: { add(value: string): unknown };
  timeoutMs?: number;
}

/**
 * Grants refresh_token and authorization_code (RFC 6749 §6) through oauth4webapi, run under the
 * fleet's refresh lock (FleetTokenSource): which refresh token to send is planRefresh's; it is marked
 * in flight before it is sent (beginRefresh-4.lua), and the answer's access token and rotated refresh
 * token are stored in one fenced step (commitRefresh-4.lua); a refusal marks the token refused
 * (endRefresh-3.lua), so no replica sends it again.
 */
export function refreshGrant(input: RefreshGrantInput): (lock: HeldLock) => Promise<FetchedToken> {
  const { auth, c, label, index, store, scripts, logger, seen } = input;
  const timeoutMs = input.timeoutMs ?? TOKEN_REQUEST_TIMEOUT_MS;
  const grant = auth.grant as 'refresh_token' | 'authorization_code';
  const as = authorizationServer(auth.tokenUrl, auth.authorizeUrl);
  const client: oauth.Client = { client_id: c.user! };
  let clientAuth: Promise<oauth.ClientAuth> | undefined;
  const what = `OAuth2 client ${label}`;

  /**
   * Refresh tokens this process saw the server rotate away, each with the one it got for it (the last
   * ROTATIONS_KEPT). Redis can lose an acknowledged rotation (a failover to a replica that had not received
   * it): it then holds a spent token again, and sending that is a reuse (a rotating server revokes the grant).
   */
  const rotations = new Map<string, string>();

  return async (lock) => {
    const st = await store.state();
    if (st.token) seen.add(st.token);
    // Redis can answer with a token this process saw rotated away (one rotation lost or several): the newest
    // one it got for it is stored again in its place (adopted, as a new starting token is) and sent instead.
    const newestStored = st.token !== undefined ? newestRotation(rotations, st.token) : undefined;
    if (newestStored !== undefined && newestStored !== st.token) {
      warnLost();
      return send(lock, st, newestStored, { sealed: store.seal(newestStored), seed: st.seed ?? '' }, 1, false);
    }
    const configToken = grant === 'refresh_token' ? c.refreshToken : undefined;
    const seed = configToken ? store.seedOf(configToken) : undefined;
    const plan = planRefresh({
      grant, label, index,
      stored: st.sealed !== '', opened: st.token !== undefined,
      newConfigToken: seed !== undefined && st.seed !== seed,
      refused: st.dead !== undefined && st.dead === st.sealed, refusedReason: st.deadReason,
      inFlight: st.inflight !== undefined && st.inflight === st.sealed, tries: st.tries,
    });
    if (plan.kind === 'refuse') throw new OAuth2RefusedError(`${what}: ${plan.reason}`, plan.reason);
    const planned = plan.token === 'config' ? configToken! : st.token!;
    // Redis rewound to before this process adopted the config's token (none stored, nothing adopted): that
    // token is spent if this process rotated it; the newest it got for it is adopted and sent instead.
    const token = newestRotation(rotations, planned);
    if (token !== planned) warnLost();
    const adopt = plan.token === 'config' ? { sealed: store.seal(token), seed: seed! } : undefined;
    return send(lock, st, token, adopt, plan.tries, plan.afterLostAnswer);
  };

  function warnLost(): void {
    logger.warn({ credential: label }, `${what}: Redis lost the rotated refresh token (a failover to a replica that had not received it); this process still holds it and stores it again instead of sending the spent one`);
  }

  async function send(lock: HeldLock, st: Awaited<ReturnType<RefreshTokenStore['state']>>, token: string, adopt: { sealed: string; seed: string } | undefined, tries: number, afterLostAnswer: boolean): Promise<FetchedToken> {
    const sent = adopt?.sealed ?? st.sealed;

    // The client's authentication first (a private key imported): a key that cannot sign fails here, before
    // anything is marked in flight or sent, so it is refused for the key, never taken for a lost answer.
    const clientAuthed = await (clientAuth ??= clientAuthOf(c, `${what}`));
    // The lock outlives the request: no other replica can take it while this token may be at the server.
    if (!(await lock.extend(timeoutMs + LOCK_MARGIN_MS))) throw new OAuth2UnavailableError(`${what}: the refresh lock expired before the refresh; trying again`);
    const begun = await retryRedis(() => scripts.begin({ owner: lock.owner, read: st.sealed, adopt, tries }));
    if (begun !== 'marked') throw new OAuth2UnavailableError(`${what}: the refresh token changed or the lock expired before the refresh; trying again`);
    if (afterLostAnswer) logger.warn({ credential: label }, `${what}: the last token-endpoint answer was lost; sending the same refresh token once more`);

    const options = { ...endpointOptions(auth.tokenUrl, timeoutMs), ...(auth.scope ? { additionalParameters: { scope: auth.scope } } : {}) };
    let res: Response;
    try {
      res = await oauth.refreshTokenGrantRequest(as, client, clientAuthed, token, options);
    } catch (err) {
      return failed(classifyFailure({ name: (err as Error).name, code: networkCode(err) }));
    }
    let body: { access_token: string; expires_in?: number; refresh_token?: string };
    try {
      body = await oauth.processRefreshTokenResponse(as, client, await withoutIdToken(res));
    } catch (err) {
      return failed(classifyFailure({ status: res.status, oauthError: err instanceof oauth.ResponseBodyError ? err.error : undefined, name: (err as Error).name, code: networkCode(err) }));
    }
    const rotated = body.refresh_token && body.refresh_token !== token ? body.refresh_token : undefined;
    if (rotated) {
      seen.add(rotated);
      rotations.set(token, rotated);
      for (const old of rotations.keys()) if (rotations.size > ROTATIONS_KEPT) rotations.delete(old);
    }
    const rotatedSealed = rotated ? store.seal(rotated) : '';
    return {
      token: body.access_token,
      expiresIn: body.expires_in,
      commit: async (access, ttlMs) => {
        const r = await retryRedis(() => scripts.commit({ owner: lock.owner, sent, rotated: rotatedSealed, access, ttlMs }));
        // A rotation no replica holds yet is lost with a failover, and then only this process knows the newest
        // token. Holding the refresh lock (no other replica refreshes meanwhile), it stores it again (a replay
        // changes nothing) and waits for a replica, until one acknowledges or REPLICA_HOLD_MS have passed.
        if (r === 'rotated') {
          const until = Date.now() + REPLICA_HOLD_MS;
          // Not extended (the lock expired meanwhile): the token is stored; a commit again would be fenced out.
          const held = await lock.extend(REPLICA_HOLD_MS + LOCK_MARGIN_MS);
          // A replay answers 'stored' (the token is already the rotated one), not 'rotated': it goes on while
          // the lock is held; fenced out, it stops (the first commit stored the token, r stays 'rotated').
          for (let i = 0, again: CommitResult = r; held && again !== 'not-owner'; i++) {
            const left = until - Date.now();
            const ack = await retryRedis(() => store.replicasHold(Math.max(1, Math.min(REPLICA_WAIT_STEP_MS, left))));
            if (ack.durable) break;
            if (left <= REPLICA_WAIT_STEP_MS) {
              logger.warn({ credential: label, replicas: ack.replicas }, `${what}: no Redis replica acknowledged the rotated refresh token within ${REPLICA_HOLD_MS / 1000} s; it is stored on the primary only (a failover now loses it; this process keeps it)`);
              break;
            }
            if (i === 0) logger.warn({ credential: label, replicas: ack.replicas }, `${what}: no Redis replica acknowledged the rotated refresh token in time; storing it again and waiting (up to ${REPLICA_HOLD_MS / 1000} s, holding the refresh lock)`);
            again = await retryRedis(() => scripts.commit({ owner: lock.owner, sent, rotated: rotatedSealed, access, ttlMs }));
          }
        }
        // Fenced out (the lock expired, another replica may hold it): nothing can be stored safely. This process
        // keeps the access token until it expires; a rotated refresh token is lost with it, and the mark left in
        // flight makes the fleet's next refresh treat the answer as lost (the old token once more, then quarantine).
        if (r === 'not-owner') {
          logger.warn(
            { credential: label },
            rotated
              ? `${what}: the refresh lock expired before the rotated refresh token was stored; the fleet's next refresh treats the answer as lost (the old token once more; if refused: ${recoveryHint({ grant, label, index })})`
              : `${what}: the refresh lock expired during the refresh; its answer was not stored for the fleet`,
          );
        }
        return r !== 'not-owner';
      },
    };

    async function failed(o: RefreshOutcome): Promise<never> {
      switch (o.kind) {
        case 'refused': {
          const reason = refusalReason({ grant, label, index }, o.error, afterLostAnswer);
          await retryRedis(() => scripts.end({ owner: lock.owner, sent, refusedReason: reason }));
          throw new OAuth2RefusedError(`${what}: ${reason}`, reason);
        }
        case 'error-answer':
        case 'not-sent':
          await retryRedis(() => scripts.end({ owner: lock.owner, sent }));
          throw new OAuth2UnavailableError(`${what}: token endpoint ${o.kind === 'not-sent' ? 'unreachable' : 'answered'} (${o.detail}); trying again later`);
        case 'lost':
          // The mark stays: the next refresh (any replica) knows this answer was lost.
          throw new OAuth2UnavailableError(`${what}: the token-endpoint answer was lost (${o.detail}); the next refresh sends the same refresh token once more`);
      }
    }
  };
}

/** The network error code of a fetch failure (undici puts it on `cause`); never the error itself (it may name the request). */
function networkCode(err: unknown): string | undefined {
  const e = err as { code?: unknown; cause?: { code?: unknown } };
  const code = e?.cause?.code ?? e?.code;
  return typeof code === 'string' ? code : undefined;
}
