import type { Got } from 'got';
import type { RedisClient } from '../redis/connect-redis.js';
import { credentialFileOf, readCredentialSet, runtimeEnv, type Config, type CredentialConfig, type RuntimeEnv } from '../config.js';
import { ConfigError } from '../errors.js';
import { watchCredentials, type CredentialWatch } from './watch-credentials.js';
import type { Logger } from '../logger.js';
import { queueKeys } from '../redis/keys.js';
import { newOpId, retryRedis } from '../redis/redis-retry.js';
import { CredentialScripts } from '../redis/credential-scripts.js';
import type { Credential, OutgoingRequest } from './credential.js';
import { buildCredentials } from './build-credentials.js';
import { credentialKey } from './credential-key.js';
import type { WindowObservation } from '../http/learn-window.js';
import { readLimitString, toLimitString } from './limit-string.js';
import { scrubSecrets } from '../policy/scrub-secrets.js';
import { decide, type CredentialDecision, type CredentialVerdict, type Decision, type Exchange, type IdState } from '../policy/decide.js';

/** Before a credential with no configured budget has seen a response: one request start per 250 ms. */
export const SLOW_START = '1:250';
/** Consecutive 401s on a credential that quarantine it (one can be a blip). */
export const UNAUTHORIZED_CONFIRM = 2;
/** How long a quarantine lasts, unless the token changes (a new token is a new credential). */
export const QUARANTINE_MS = 24 * 3600_000;
/** A rest longer than this is a warning (a user may want to act); shorter ones are routine pacing, logged as info. */
export const LONG_REST_MS = 60_000;

export type { CredentialVerdict };

/** Result of asking the pool for a credential. */
export type Acquired =
  | {
      kind: 'granted';
      credential: Credential;
      /** ms to wait before starting: the reserved slot. */
      waitMs: number;
      /** The start's entry in the credential's window log, to confirm with the response ('': not logged). */
      start: string;
      /** The in-flight lease taken (budget.maxInFlight): give it back with endRequest once the request is over. */
      lease?: string;
      /** The pacing interval this start took (µs, 0: none): given back with the start if it is not sent. */
      paceUs: number;
    }
  | { kind: 'wait'; /** ms until the earliest credential could start. */ waitMs: number }
  | { kind: 'exhausted'; /** every credential of the pool is quarantined (not just the excluded ones). */ allQuarantined: boolean };


/** One credential's fleet-wide state, for `pullq status`. */
export interface CredentialHealth {
  label: string;
  state: 'ok' | 'resting' | 'quarantined';
  until: string | null;
  reason: string | null;
  /** The rest the server asked for when it was longer than retry.maxWaitMs (capped to it), in ms. */
  askedMs: number | null;
  budget: string;
  /** Starts left in the tightest window now, when a budget is known. */
  remaining: number | null;
  requests: number;
  n429: number;
  n401: number;
  n403: number;
  /** Rests begun, and the time they covered (ms), fleet-wide since the queue began. */
  rests: number;
  restedMs: number;
}

/** A credential's fleet-wide counters and known limits: `pull` reads them before and after, for its summary. */
export interface CredentialUsage {
  label: string;
  requests: number;
  /** Of those, answers the API did not count against the budget (304s with budget.free304); 0 when absent. */
  free?: number;
  n429: number;
  rests: number;
  restedMs: number;
  /** The configured limits, else the learned ones ("q:wMs;…"), "" when none is known. */
  limits: string;
}

/** What a pool tells the process as credentials rest and are quarantined (e.g. Prometheus counters). */
export interface CredentialEvents {
  /** A rest this process's report started or extended; reason: rate_limited, remaining_zero or retry_after. */
  rest(e: { credential: Credential; reason: string }): void;
  /** A quarantine this process's report put on; reason: unauthorized or token_refused. */
  quarantine(e: { credential: Credential; reason: string }): void;
}


/** What a pool needs: the queue's Redis (its state and fingerprint key), the config, a logger, an HTTP client (OAuth2). */
export interface PoolDeps {
  redis: RedisClient;
  config: Config;
  logger: Logger;
  http: Got;
  events?: CredentialEvents;
  /**
   * Watch auth.tokensFile / auth.credentialsFile (watch-credentials.ts) and swap the set in when it changes
   * (a poll every 2 s, at once on SIGHUP) until close(). Long-lived processes: workers, the dashboard.
   */
  watch?: boolean;
  /** Short-lived readers (status, `pullq credentials`): the file as it is now, when the config names one; the config's set if it cannot be read. */
  reread?: boolean;
  /** The environment `${VAR}`s in a credentials file come from, and PULLQ_CREDENTIALS_POLL_MS (default: process.env). */
  env?: RuntimeEnv;
}

/**
 * The credentials of a fleet: every replica takes one per request through one
 * atomic Lua script (budgets, rests and quarantines live in Redis, on Redis's
 * clock), and reports what the API said back (Retry-After, rate-limit
 * headers, 401s), so each signal reaches every replica at once.
 */
export class CredentialPool {
  /** The set in force, in config (or file) order; replace() swaps it. */
  private current: readonly Credential[] = [];
  /** What each credential in force was built from (its CredentialConfig as JSON, in memory only): an unchanged entry keeps its object. */
  private readonly builtFrom = new Map<string, string>();
  /** Credentials no longer in force: their secrets are still scrubbed (a request in flight may fail with one). */
  private readonly retired = new Set<Credential>();
  /** Ids of the set in force. */
  private inForce = new Set<string>();
  /** Configured limits per credential id ("" for none); entries of removed credentials stay (their requests in flight report). */
  private readonly configured = new Map<string, string>();
  /** budget.maxInFlight per credential id, when set. */
  private readonly inFlightCaps = new Map<string, number>();
  /** budget.burst per credential id, when set (else the pacing default: 100 ms of starts). */
  private readonly bursts = new Map<string, number>();
  /** Credential ids whose budget says budget.free304: a conditional 304 gives its start back. */
  private readonly free304 = new Set<string>();
  /** How long an in-flight lease lasts: longer than any request can take (a crashed replica's leases come back then). */
  private readonly leaseMs: number;
  private readonly scripts: CredentialScripts;
  private readonly redis: RedisClient;
  private readonly keys: ReturnType<typeof queueKeys>;
  private readonly logger: Logger;
  private readonly retry: Config['retry'];
  /** Last limits this process reported per credential: only changes are sent. */
  private readonly reportedLimits = new Map<string, string>();
  /** Credentials this process saw in a non-ok state: the next ok is reported to reset their counters. */
  private readonly dirty = new Set<string>();
  /** Rests this process started, by credential (epoch ms), so its own sleepers need not ask Redis. */
  private readonly restingUntil = new Map<string, number>();
  /** What this process saw of each credential's remaining/reset, for windows no header states. */
  private readonly windows = new Map<string, WindowObservation>();
  private readonly events: CredentialEvents | undefined;
  private readonly deps: PoolDeps;
  private readonly fingerprintKey: Buffer;
  private watcher: CredentialWatch | undefined;

  /**
   * The pool of a config's credentials, named under the deployment's fingerprint key (credential-key.ts:
   * read from Redis, created by the first process): every replica gets the same credential ids.
   */
  static async open(deps: PoolDeps): Promise<CredentialPool> {
    const pool = new CredentialPool(deps, await credentialKey(deps.redis, deps.config.queue));
    let built: ReturnType<CredentialPool['build']> | undefined;
    if (deps.reread) {
      try {
        built = pool.build(readCredentialSet(deps.config, deps.env));
      } catch {
        // The file is bad now (unreadable, a duplicate secret…): a watching replica keeps the set it had, which (for a reader) is the config's.
      }
    }
    built ??= pool.build(deps.config.credentials);
    await Promise.all(built.fresh.map((c) => c.prepare?.()));
    pool.install(built);
    const file = credentialFileOf(deps.config);
    if (deps.watch && file) {
      const env = deps.env ?? runtimeEnv();
      pool.watcher = watchCredentials({ file: file.file, read: () => readCredentialSet(deps.config, env), target: pool, logger: deps.logger, pollMs: env.credentialsPollMs });
    }
    return pool;
  }

  private constructor(deps: PoolDeps, fingerprintKey: Buffer) {
    const { redis, config, logger } = deps;
    this.deps = deps;
    this.fingerprintKey = fingerprintKey;
    this.events = deps.events;
    this.redis = redis;
    this.logger = logger;
    this.retry = config.retry;
    this.scripts = new CredentialScripts(redis, config.queue);
    this.keys = queueKeys(config.queue);
    // A request ends within request.timeoutMs; 5 s more covers getting its token and reporting back.
    this.leaseMs = config.request.timeoutMs + 5_000;
  }

  /** The credentials in force now. */
  get credentials(): readonly Credential[] {
    return this.current;
  }

  get size(): number {
    return this.current.length;
  }

  /**
   * Makes `list` the set in force (a rotated credentials file): a credential no longer listed starts no new
   * request (one in flight finishes and reports), a new one joins with its budget once prepared, an unchanged
   * one keeps its object (its token, its memory). Throws a ConfigError, the set in force kept, when two
   * entries have the same secret.
   */
  async replace(list: readonly CredentialConfig[]): Promise<{ added: number; removed: number; changed: number; size: number }> {
    const built = this.build(list);
    await Promise.all(built.fresh.map((c) => c.prepare?.()));
    const before = new Set(this.current.map((c) => c.id));
    const after = new Set(built.credentials.map((c) => c.id));
    const added = [...after].filter((id) => !before.has(id)).length;
    const removed = [...before].filter((id) => !after.has(id)).length;
    const changed = built.fresh.filter((c) => before.has(c.id)).length;
    this.install(built);
    return { added, removed, changed, size: this.current.length };
  }

  /** Stops watching the credentials file (the pool itself holds nothing else to close). */
  close(): void {
    this.watcher?.close();
    this.watcher = undefined;
  }

  /** The credentials of `list`: the objects in force for entries that did not change, new ones (`fresh`) for the rest. */
  private build(list: readonly CredentialConfig[]): { credentials: Credential[]; fresh: Credential[]; from: Map<string, string> } {
    const { config, redis, http, logger } = this.deps;
    const made = buildCredentials({ config: { ...config, credentials: [...list] }, key: this.fingerprintKey, redis, queue: config.queue, http, logger });
    const seen = new Set<string>();
    for (const c of made) {
      if (seen.has(c.id)) throw new ConfigError(`auth: two credentials have the same secret (${c.label})`);
      seen.add(c.id);
    }
    const inForce = new Map(this.current.map((c) => [c.id, c]));
    const from = new Map<string, string>();
    const fresh: Credential[] = [];
    const credentials = made.map((c, i) => {
      const sig = list[i] ? JSON.stringify({ ...list[i], source: undefined, entry: undefined }) : '';
      from.set(c.id, sig);
      const old = inForce.get(c.id);
      if (old && this.builtFrom.get(c.id) === sig) return old;
      fresh.push(c);
      return c;
    });
    return { credentials, fresh, from };
  }

  private install(built: { credentials: Credential[]; from: Map<string, string> }): void {
    const config = this.deps.config;
    for (const c of built.credentials) {
      const b = c.budget ?? config.budget;
      this.configured.set(c.id, b?.requests !== undefined && b.perSeconds !== undefined ? toLimitString([{ requests: b.requests, windowMs: b.perSeconds * 1000 }]) : '');
      if (b?.maxInFlight !== undefined) this.inFlightCaps.set(c.id, b.maxInFlight);
      else this.inFlightCaps.delete(c.id);
      if (b?.burst !== undefined) this.bursts.set(c.id, b.burst);
      else this.bursts.delete(c.id);
      if (b?.free304) this.free304.add(c.id);
      else this.free304.delete(c.id);
    }
    for (const c of this.current) if (!built.credentials.includes(c)) this.retired.add(c);
    this.builtFrom.clear();
    for (const [id, sig] of built.from) this.builtFrom.set(id, sig);
    this.current = built.credentials;
    this.inForce = new Set(built.credentials.map((c) => c.id));
  }

  /**
   * Takes a credential for one request (not one in `exclude`), reserving its
   * start if it is at most `horizonMs` away.
   */
  async acquire(exclude: ReadonlySet<string>, horizonMs: number): Promise<Acquired> {
    const candidates = this.credentials.filter((c) => !exclude.has(c.id));
    if (candidates.length === 0) return { kind: 'exhausted', allQuarantined: await this.allQuarantined() };
    const opId = newOpId();
    const input = {
      candidates: candidates.map((c) => ({ id: c.id, limits: this.configured.get(c.id) ?? '', maxInFlight: this.inFlightCaps.get(c.id), burst: this.bursts.get(c.id) })),
      horizonMs,
      slowStart: SLOW_START,
      opId,
      leaseMs: this.leaseMs + horizonMs,
    };
    const r = await retryRedis(() => this.scripts.take(input));
    if (r.kind === 'quarantined') return { kind: 'exhausted', allQuarantined: exclude.size === 0 ? true : await this.allQuarantined() };
    if (r.kind === 'wait') return { kind: 'wait', waitMs: Math.max(1, r.retryAt - r.now) };
    const credential = candidates[r.index]!;
    return { kind: 'granted', credential, waitMs: Math.max(0, r.startAt - r.now), start: r.start, lease: this.inFlightCaps.has(credential.id) ? opId : undefined, paceUs: r.paceUs };
  }

  /** Gives back an in-flight lease (budget.maxInFlight) once its request is over, answered or not. Idempotent. */
  async endRequest(credential: Credential, lease: string | undefined): Promise<void> {
    if (lease !== undefined) await retryRedis(() => this.redis.zrem(this.keys.credInFlight(credential.id), lease));
  }

  /**
   * Whether a credential is resting or quarantined now: asked before using a
   * start that was reserved a while ago (a rest may have begun meanwhile on
   * any replica). `askRedis` false: only what this process knows.
   */
  async isResting(credential: Credential, askRedis: boolean): Promise<boolean> {
    // Removed by a rotation while its start waited: it starts no new request (the start is given back, another is taken).
    if (!this.inForce.has(credential.id)) return true;
    const now = Date.now();
    if ((this.restingUntil.get(credential.id) ?? 0) > now) return true;
    if (!askRedis) return false;
    const [rest, q] = await retryRedis(() => this.redis.hmget(this.keys.cred(credential.id), 'restUntil', 'qUntil'));
    return Number(rest ?? 0) > now || Number(q ?? 0) > now;
  }

  /**
   * Gives back a reserved start that was not sent, so its slot (and its pacing interval) can be used
   * again and it does not count as a request. Call it once per start taken and not sent.
   */
  async release(credential: Credential, start: string, paceUs = 0): Promise<void> {
    const opId = newOpId();
    await retryRedis(() => this.scripts.release(credential.id, start, paceUs, opId));
  }

  /** True when no credential of the pool can be used: the run cannot go on. */
  async allQuarantined(): Promise<boolean> {
    const now = Date.now();
    const values = await retryRedis(() => Promise.all(this.credentials.map((c) => this.redis.hget(this.keys.cred(c.id), 'qUntil'))));
    return values.every((v) => v !== null && Number(v) > now);
  }

  /**
   * Decides what one answer means (src/policy/decide.ts) and tells the fleet
   * the credential's part; returns the whole decision for the caller to act
   * on. A 401 first asks an OAuth2 credential whether its token was already
   * replaced (then the 401 is 'stale', not the credential's fault).
   */
  async answer(credential: Credential, request: OutgoingRequest, exchange: Exchange, id: IdState, start = '', paceUs = 0): Promise<Decision> {
    const tokenReplaced = exchange.status === 401 && credential.onUnauthorized ? !(await credential.onUnauthorized(request)) : false;
    const state = { id: credential.id, tokenReplaced, window: this.windows.get(credential.id), free304: this.free304.has(credential.id) };
    const decision = decide(exchange, id, state, { retry: this.retry }, Date.now());
    if (decision.credential.window) this.windows.set(credential.id, decision.credential.window);
    await this.report(credential, decision.credential, start, paceUs);
    return decision;
  }

  /**
   * Tells the fleet what an answer meant for its credential (reportResponse-0.lua).
   * Sends nothing for a plain success that changes nothing (the common case),
   * so most requests cost one Redis call, the take.
   */
  async report(credential: Credential, d: CredentialDecision, start = '', paceUs = 0): Promise<void> {
    if (!d.answered) {
      if (!this.reportedLimits.has(credential.id)) {
        // Nothing to learn from a failed exchange: end the slow start anyway, or a dead API is crawled at 4/s.
        this.reportedLimits.set(credential.id, '-');
        await this.send(credential, d.verdict, undefined, '-', UNAUTHORIZED_CONFIRM, 'unauthorized', start);
      } else if (start !== '') {
        // It may have reached the server: its start counts from now.
        await this.confirm(credential, start);
      }
      return;
    }
    const limits = d.limits.length > 0 ? toLimitString(d.limits) : d.headersSeen ? '' : '-';
    const newLimits = limits !== '' && this.reportedLimits.get(credential.id) !== limits;
    if (d.askedMs !== undefined) this.warnCappedWait(d.askedMs, credential);
    // A stale 401 (another replica already dropped that token for the fleet, and counted it) marks this process
    // dirty too, so its next success resets the fleet's count: else two tokens that died in turn, each counted by
    // a replica that saw no success in between, would quarantine a good credential as "two 401s in a row".
    if (d.verdict === 'stale') this.dirty.add(credential.id);
    if ((d.verdict === 'ok' && !newLimits && d.restMs === undefined && !this.dirty.has(credential.id)) || d.verdict === 'stale') {
      if (d.free) await this.refund(credential, start, paceUs);
      else if (start !== '') await this.confirm(credential, start);
      return;
    }
    if (d.verdict === 'ok') this.dirty.delete(credential.id);
    else this.dirty.add(credential.id);
    if (newLimits) this.reportedLimits.set(credential.id, limits);
    await this.send(credential, d.verdict, d.restMs, newLimits ? limits : '', UNAUTHORIZED_CONFIRM, 'unauthorized', start, d.soft, d.askedMs);
    if (d.free) await this.refund(credential, start, paceUs);
  }

  /** Gives back the budget of an answer the API did not count (refundStart-3.lua: a replay gives nothing back twice). */
  private async refund(credential: Credential, start: string, paceUs: number): Promise<void> {
    const opId = newOpId();
    await retryRedis(() => this.scripts.refund(credential.id, start, paceUs, opId));
  }

  /** Moves a logged start to now (confirmStart-0.lua: idempotent, safe to replay). */
  private async confirm(credential: Credential, start: string): Promise<void> {
    await retryRedis(() => this.scripts.confirm(credential.id, start));
  }

  /**
   * The one place a wait capped by retry.maxWaitMs is said (once per process for each credential's rest, and once
   * for the retries of IDs, e.g. Retry-After on a 503): the user may want to raise the cap.
   */
  warnCappedWait(askedMs: number, credential?: Credential): void {
    const key = `${this.deps.config.queue}:${credential ? credential.id : 'ids'}`;
    if (cappedWaitsLogged.has(key)) return;
    cappedWaitsLogged.add(key);
    const maxWaitMs = this.retry.maxWaitMs;
    const what = credential ? `credential ${credential.label}: the API asked to wait ${formatMs(askedMs)}; waiting` : `the API asked to retry an ID after ${formatMs(askedMs)}; retrying after`;
    this.logger.warn({ ...(credential ? { credential: credential.label } : {}), askedMs, maxWaitMs }, `${what} retry.maxWaitMs (${formatMs(maxWaitMs)}) instead`);
  }

  /** Quarantines a credential now (e.g. its OAuth2 token endpoint refused the client), with `reason` scrubbed of the pool's secrets. */
  async quarantine(credential: Credential, reason: string): Promise<void> {
    this.dirty.add(credential.id);
    // The reason goes to Redis (qReason), the log, `pullq credentials` and /api/state: a signer's or an issuer's text may quote a secret.
    await this.send(credential, 'unauthorized', undefined, '', 1, scrubSecrets(reason, this.secrets()), '');
  }

  private async send(credential: Credential, verdict: CredentialVerdict, restMs: number | undefined, limits: string, confirm: number, reason: string, start: string, soft = false, askedMs?: number): Promise<void> {
    const input = {
      id: credential.id, outcome: verdict, restMs, limits, backoffBaseMs: this.retry.baseDelayMs, backoffMaxMs: this.retry.maxDelayMs,
      jitter: Math.random(), confirm401: confirm, quarantineMs: QUARANTINE_MS, reason, start, soft, configured: this.configured.get(credential.id) ?? '',
      opId: newOpId(), askedMs,
    };
    const r = await retryRedis(() => this.scripts.report(input));
    if (r.kind === 'resting') this.events?.rest({ credential, reason: soft ? 'remaining_zero' : verdict === 'limited' ? 'rate_limited' : 'retry_after' });
    if (r.kind === 'quarantined') this.events?.quarantine({ credential, reason: reason === 'unauthorized' ? 'unauthorized' : 'token_refused' });
    if (r.kind === 'resting') {
      this.restingUntil.set(credential.id, r.until);
      // Routine pacing is info (pull sums it up at the end); a rest longer than a minute is worth a look.
      const restMs = Math.max(0, r.until - Date.now());
      const level = restMs > LONG_REST_MS ? 'warn' : 'info';
      this.logger[level]({ credential: credential.label, until: new Date(r.until).toISOString() }, `credential ${credential.label} is rate limited: resting ${formatMs(restMs)}, until ${new Date(r.until).toISOString()}`);
    }
    if (r.kind === 'quarantined') this.logger.error({ credential: credential.label, reason }, `credential ${credential.label} quarantined (${reason}); the others carry on`);
  }

  /** Fleet-wide state of every credential, for `pullq status`. */
  async health(): Promise<CredentialHealth[]> {
    const now = Date.now();
    return Promise.all(
      this.credentials.map(async (c) => {
        const h = await retryRedis(() => this.redis.hgetall(this.keys.cred(c.id)));
        // A stored budget the scripts do not trust counts as none known (they go at the slow start).
        const limits = this.configured.get(c.id) || (readLimitString(h['limits'] ?? '') ? h['limits'] : '') || '';
        let remaining: number | null = null;
        for (const l of readLimitString(limits) ?? []) {
          const used = await this.redis.zcount(this.keys.credLog(c.id), now - l.windowMs, '+inf');
          remaining = Math.min(remaining ?? Infinity, Math.max(0, l.requests - used));
        }
        const qUntil = Number(h['qUntil'] ?? 0);
        const restUntil = Number(h['restUntil'] ?? 0);
        const state = qUntil > now ? 'quarantined' : restUntil > now ? 'resting' : 'ok';
        return {
          label: c.label,
          state,
          until: state === 'quarantined' ? new Date(qUntil).toISOString() : state === 'resting' ? new Date(restUntil).toISOString() : null,
          // Scrubbed at the quarantine; again here for a reason an older replica stored.
          reason: state === 'quarantined' ? scrubSecrets(h['qReason'] ?? '', this.secrets()) || null : null,
          askedMs: state === 'resting' && h['restAsked'] ? Number(h['restAsked']) : null,
          budget: describeLimits(limits, !!this.configured.get(c.id), h['observed'] === '1') + (this.inFlightCaps.has(c.id) ? `, ≤ ${this.inFlightCaps.get(c.id)} in flight` : ''),
          remaining,
          requests: Number(h['requests'] ?? 0),
          n429: Number(h['n429'] ?? 0),
          n401: Number(h['n401'] ?? 0),
          n403: Number(h['n403'] ?? 0),
          rests: Number(h['rests'] ?? 0),
          restedMs: Number(h['restedMs'] ?? 0),
        } satisfies CredentialHealth;
      }),
    );
  }

  /** Every credential's counters and known limits now (one HMGET each). */
  async usage(): Promise<CredentialUsage[]> {
    return Promise.all(
      this.credentials.map(async (c) => {
        const [requests, free, n429, rests, restedMs, learned] = await retryRedis(() => this.redis.hmget(this.keys.cred(c.id), 'requests', 'free', 'n429', 'rests', 'restedMs', 'limits'));
        return {
          label: c.label,
          requests: Number(requests ?? 0),
          free: Number(free ?? 0),
          n429: Number(n429 ?? 0),
          rests: Number(rests ?? 0),
          restedMs: Number(restedMs ?? 0),
          limits: this.configured.get(c.id) || learned || '',
        };
      }),
    );
  }

  /** Every secret the pool knows (client secrets, tokens, OAuth2 access tokens seen), for scrubbing text. */
  secrets(): string[] {
    return [...this.current, ...this.retired.values()].flatMap((c) => [...c.secrets, ...(c.seenSecrets?.() ?? [])]);
  }

  /** Token- and login-endpoint calls this process made (oauth2, login), for tests and benchmarks. */
  tokenEndpointCalls(): number {
    return this.credentials.reduce((n, c) => n + (c.endpointCalls?.() ?? 0), 0);
  }
}

/** Capped waits this process already logged, by queue: per credential (its rests), and once for IDs' retries (all of a process's pools). */
const cappedWaitsLogged = new Set<string>();

/** A duration for a human: "250 ms", "42 s", "3.5 h", "3650 d". */
export function formatMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min`;
  if (ms < 172_800_000) return `${(ms / 3_600_000).toFixed(1)} h`;
  return `${Math.round(ms / 86_400_000)} d`;
}

function describeLimits(limits: string, configured: boolean, observed: boolean): string {
  if (!limits) return observed ? 'none announced' : 'not yet known';
  const text = [...limits.matchAll(/(\d+):(\d+)/g)].map((m) => `${m[1]}/${Number(m[2]) / 1000}s`).join(' + ');
  return configured ? text : `${text} (learned)`;
}
