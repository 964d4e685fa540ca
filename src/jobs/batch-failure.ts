import { CommitUnknownError } from '../errors.js';
import { isRedisConnectionError } from '../redis/redis-retry.js';

/** Own (non-transient) failures of a batch before its run is aborted: src/policy/batch-failure-verdict.ts decides. */
export { POISON_ATTEMPTS } from '../policy/batch-failure-verdict.js';

/** Node and PostgreSQL error codes that say "not now", not "never": retrying the batch later may work. */
const TRANSIENT_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND',
  'EAGAIN', 'EBUSY', 'EMFILE', 'ENFILE',
  // PostgreSQL: connection exceptions (08...), server shutting down or starting (57P0x), too many connections,
  // serialization failures and deadlocks.
  '57P01', '57P02', '57P03', '53300', '40001', '40P01',
]);

/**
 * Whether an error that ended a batch attempt is worth retrying as it is
 * (Redis or the database briefly unreachable), or says the batch cannot be
 * written however often it is tried (the sink refuses its data, a program
 * limit): then, after POISON_ATTEMPTS such failures (blips never count), the run is aborted naming the cause
 * instead of looping. Pure: test/batch-failure.test.ts is the table.
 */
export function isTransientFailure(err: unknown): boolean {
  if (err instanceof CommitUnknownError || isRedisConnectionError(err)) return true;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && (TRANSIENT_CODES.has(code) || code.startsWith('08'))) return true;
  const message = (err as { message?: unknown } | null)?.message;
  // node-postgres when the server went away mid-query.
  return typeof message === 'string' && /^(Connection terminated|Client has encountered a connection error|timeout exceeded when trying to connect)/.test(message);
}
