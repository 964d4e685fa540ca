/**
 * Every error pullq raises on purpose: a stable string `code` (SPEC names where
 * the SPEC has one), a message safe to print (never a secret), and the `cause`.
 */
export class PullqError extends Error {
  readonly code: string;
  /** Process exit code the CLI uses when this error ends a command. */
  readonly exitCode: number;

  constructor(code: string, message: string, options: { cause?: unknown; exitCode?: number } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.exitCode = options.exitCode ?? 1;
  }
}

/** A config file that is missing, unreadable or fails the schema. */
export class ConfigError extends PullqError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('config_invalid', message, options);
  }
}

/** Unusable user input: an IDs file, a run name, a command-line flag. */
export class InputError extends PullqError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('input_invalid', message, options);
  }
}

/** Redis cannot be reached or refused a command pullq cannot do without. */
export class RedisUnavailableError extends PullqError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('redis_unavailable', message, options);
  }
}

/** The run cannot finish: e.g. every credential was rejected (exit 2). */
export class RunAbortedError extends PullqError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('run_aborted', message, { ...options, exitCode: 2 });
  }
}

/** A batch step's commit got no answer from Redis: it may or may not have committed; the batch is retried. */
export class CommitUnknownError extends PullqError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('commit_unknown', message, options);
  }
}

/**
 * Redis acknowledged IDs of an enqueue, then lost them (a restart without fsync, a failover to a replica that
 * lagged): enqueuing the same IDs into the same run again adds what was lost and skips what is in.
 */
export class EnqueueLostError extends PullqError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('enqueue_lost', message, options);
  }
}

/** A server (`pullq dashboard`) cannot listen: the port is taken, not ours to bind, or the host is not this machine's. */
export class ListenError extends PullqError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('listen_failed', message, options);
  }
}

/** A redirect request.redirects does not allow (another origin at a non-public address, or https → http): the ID fails `redirect_refused`. */
export class RedirectRefusedError extends PullqError {
  /** The status of the answer that redirected (301, 302, …). */
  readonly status: number;

  constructor(message: string, status: number, options: { cause?: unknown } = {}) {
    super('redirect_refused', message, options);
    this.status = status;
  }
}
