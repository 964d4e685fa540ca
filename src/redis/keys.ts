// Every Redis key pullq uses is named here (in the manner of BullMQ's
// QueueKeys). All keys of one queue carry the hash tag `{<queue>}`, BullMQ's
// included (its prefix is `bull:{<queue>}`), so on Redis Cluster a queue and
// everything pullq keeps for it (runs, batches, credentials, OAuth2 tokens)
// live in one hash slot: every Lua script, and every BullMQ script that
// pullq's commit checks the job lock of, touches one slot. Many queues spread
// over the shards; one queue is served by one shard (as any BullMQ queue is).

/** The hash tag of a queue's keys. */
export function queueTag(queue: string): string {
  return `{${queue}}`;
}

/** BullMQ's `prefix` option for a queue: its keys become `bull:{<queue>}:<queue>:…`. */
export function bullPrefix(queue: string): string {
  return `bull:${queueTag(queue)}`;
}

/** BullMQ's hash of one job (it exists while the job is waiting, delayed, active, or failed and kept). */
export function bullJobKey(queue: string, jobId: string): string {
  return `${bullPrefix(queue)}:${queue}:${jobId}`;
}

/** Every key of a queue, pullq's and BullMQ's (as glob patterns), for clean-up. */
export function queuePatterns(queue: string): string[] {
  return [`${bullPrefix(queue)}:*`, `${queueKeys(queue).base}*`];
}

/** pullq's keys of one queue. */
export function queueKeys(queue: string) {
  const base = `pullq:${queueTag(queue)}:`;
  return {
    /** Everything below starts with this. */
    base,
    /** Sorted set of the queue's runs (by creation time). */
    runs: `${base}runs`,
    /** Prefix of the credential keys: `<credPrefix><id>` (hash), `…:log` (start log), `…:inflight` (leases). */
    credPrefix: `${base}cred:`,
    /** A credential's state hash, its start log (zset) and its in-flight leases (zset). */
    cred: (id: string) => `${base}cred:${id}`,
    credLog: (id: string) => `${base}cred:${id}:log`,
    credInFlight: (id: string) => `${base}cred:${id}:inflight`,
    /** The pool's take counter (credentials take turns). */
    takeTurn: `${base}cred-turn`,
    /** The deployment's random key of credential fingerprints (string, base64; written once, never expires). */
    credKey: `${base}cred-key`,
    /** Take reservations of one 20 s bucket, by operation id (a replayed take answers from it). */
    takes: (bucket: number) => `${base}cred-takes:${bucket}`,
    /** The operation record of a credential report, release or refund (a replayed call answers from it). */
    op: (opId: string) => `${base}cred-op:${opId}`,
    /**
     * Requests answered in one 10 s bucket (epoch ms ÷ 10,000), every credential's: a hash of
     * `<credential id>:a` (accepted) and `<credential id>:r` (rejected: rate limited) counts. Each
     * expires an hour and a minute after its bucket, so a queue keeps at most ~366 of them.
     */
    throughput: (bucket: number) => `${base}tp:${bucket}`,
    /** A token credential's (oauth2, login) sealed access token. */
    oauth: (id: string) => `${base}oauth:${id}`,
    /** Its refresh lock: the owner's random value, one refresh per credential at a time for the fleet. */
    oauthLock: (id: string) => `${base}oauth:${id}:lock`,
    /** An OAuth2 client's sealed refresh token (grants refresh_token, authorization_code): no TTL, replaced on rotation. */
    refreshToken: (id: string) => `${base}oauth:${id}:rt`,
    /**
     * Its refresh state (hash, no TTL): `inflight` (the sealed refresh token of a request not yet
     * resolved), `tries` and `owner` (the lock value of the replica that sent it), `dead` (a sealed refresh token the server refused) and `deadReason`,
     * `seed` (an HMAC of the config's starting refresh token the fleet adopted). Never a plain token.
     */
    refreshState: (id: string) => `${base}oauth:${id}:rt-state`,
    run: (run: string) => runKeys(queue, run),
    /**
     * A marker written just before a WAIT (src/redis/wait-for-replicas.ts), so the WAIT covers every write
     * Redis had made when it ran, whoever made them (a string, 60 s TTL, never a secret).
     */
    replicated: `${base}replicated`,
  };
}

/** Keys of one run: all start with `pullq:{<queue>}:run:<run>:`. */
export function runKeys(queue: string, run: string) {
  const prefix = `pullq:${queueTag(queue)}:run:${run}:`;
  return {
    prefix,
    meta: `${prefix}meta`,
    pendingJobs: `${prefix}pj`,
    parts: `${prefix}parts`,
    /** What each state-changing script call did, by operation id: a replayed call answers from it. */
    ops: `${prefix}ops`,
    finalizeLock: `${prefix}fin`,
    /** failed.jsonl lines of IDs that cannot be requested (list). */
    invalid: `${prefix}inv`,
    batch: (n: number) => `${prefix}b:${n}`,
    batchState: (n: number) => `${prefix}bs:${n}`,
    seenBucket: (n: number) => `${prefix}s:${n}`,
  };
}
