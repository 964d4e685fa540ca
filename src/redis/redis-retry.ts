import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

/** How long an operation keeps retrying through a lost Redis connection before giving up. */
export const REDIS_RETRY_MS = 120_000;

const CONNECTION_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED']);
const CONNECTION_NAMES = new Set(['AbortError', 'MaxRetriesPerRequestError']);
/** Replies of a Redis that is starting, failing over or resharding: the same call works a moment later. */
const TRANSIENT_REPLY = /^(LOADING|READONLY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN|BUSY )/;
const CONNECTION_MESSAGE = /^(Connection is closed|Command aborted due to connection close|Stream isn't writeable|Reached the max retries per request limit|connect ETIMEDOUT|write EPIPE|read ECONNRESET)/;

/**
 * True when `err` says the connection to Redis dropped or Redis was briefly
 * unable to answer, not that a command was wrong: the outcome of the command
 * is unknown, and an idempotent call may be made again.
 */
export function isRedisConnectionError(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { name?: unknown; code?: unknown; message?: unknown };
  if (typeof e.name === 'string' && CONNECTION_NAMES.has(e.name)) return true;
  if (typeof e.code === 'string' && CONNECTION_CODES.has(e.code)) return true;
  const message = typeof e.message === 'string' ? e.message : '';
  return CONNECTION_MESSAGE.test(message) || TRANSIENT_REPLY.test(message);
}

/** 72 random bits naming this process's operations; a counter tells them apart. */
const PROCESS_TAG = randomBytes(9).toString('base64url');
let opCount = 0;

/**
 * A fresh operation id: scripts remember what they did under it, so a replayed call changes nothing
 * twice. Unique across processes (a random tag per process) and within one (a counter): no call into
 * the CSPRNG per request (one per take was ~5% of a busy worker's CPU).
 */
export function newOpId(): string {
  return `${PROCESS_TAG}${(opCount++).toString(36)}`;
}

/**
 * Runs `op`, and runs it again while it fails for a lost connection, up to
 * `forMs` in all (capped backoff), or until `stop()` says to give up. `op` must be idempotent: a call
 * whose reply was lost may have run. Other errors, and the last connection error, are thrown.
 */
export async function retryRedis<T>(op: () => Promise<T>, forMs = REDIS_RETRY_MS, stop?: () => boolean): Promise<T> {
  const deadline = Date.now() + forMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return await op();
    } catch (err) {
      if (!isRedisConnectionError(err) || Date.now() >= deadline || stop?.() === true) throw err;
      // Quick after a blip (the connection is usually back at once), capped at 1 s during an outage.
      await sleep(Math.min(20 * 2 ** Math.min(attempt, 6), 1000, Math.max(0, deadline - Date.now())));
    }
  }
}
