import { CredentialPool } from '../auth/credential-pool.js';
import type { CredentialSource } from '../auth/credential.js';
import type { Config } from '../config.js';
import { createHttpClient } from '../jobs/http-client.js';
import type { Logger } from '../logger.js';
import type { Connected } from './pullq-context.js';

/** One credential of the pool as the fleet sees it now (`pullq credentials`): names and states, never a secret. */
export interface CredentialInfo {
  /** Its configured name, else its fingerprint. */
  name: string;
  /** The fleet-wide key of its state: "fp-<12 hex>" (an HMAC of the secret), or "anonymous" for auth "none". */
  id: string;
  /** The auth type it serves: header, query, basic, oauth2, login, oauth1, custom, none. */
  kind: string;
  /** Fleet-wide: ok, resting (rate limited, until `until`) or quarantined (refused, for `reason`, until `until`). */
  state: 'ok' | 'resting' | 'quarantined';
  /** When a rest or a quarantine ends (ISO 8601 UTC), else null. */
  until: string | null;
  /** A quarantine's one line (e.g. "unauthorized", "login refused (HTTP 401): check its username and password"), else null. */
  reason: string | null;
  /** Where it came from: config, tokensFile, credentialsFile or library. */
  source: CredentialSource;
}

/**
 * The pool as the fleet sees it now: each credential's name, kind, state and source, read from Redis.
 * Sends no request: a token kind's credential is not logged in or refreshed by looking at it.
 */
export async function listCredentials(c: Connected, config: Config, logger: Logger): Promise<CredentialInfo[]> {
  // The credentials file as it is now: the set in force.
  const pool = await CredentialPool.open({ redis: c.redis, config, logger, http: createHttpClient(config), reread: true });
  const health = await pool.health();
  return pool.credentials.map((cred, i) => {
    const h = health[i]!;
    return { name: cred.label, id: cred.id, kind: cred.kind, state: h.state, until: h.until, reason: h.reason, source: cred.source };
  });
}
