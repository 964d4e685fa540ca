/** Failures of a batch's own (not blips of Redis or the database) that end its run: retrying does not fix them. */
export const POISON_ATTEMPTS = 3;

export interface BatchFailureVerdict {
  /** `retry`: the attempt's error goes to BullMQ (the batch is tried again after its backoff); `abort`: the run stops naming it. */
  action: 'retry' | 'abort';
  /** The batch's own failures counting this one (what to keep for its next attempt). */
  ownFailures: number;
}

/**
 * What a failed attempt of a batch does. A transient failure (Redis or the database briefly unreachable, a commit
 * whose outcome is unknown: jobs/batch-failure.ts isTransientFailure) never counts: a run that lasts days rides out
 * any number of blips. The batch's own failure (the sink refuses its data, a program limit) counts, and the
 * POISON_ATTEMPTS-th aborts the run instead of looping. Stalls (a worker killed) never reach here.
 */
export function batchFailureVerdict(transient: boolean, ownFailuresBefore: number): BatchFailureVerdict {
  if (transient) return { action: 'retry', ownFailures: ownFailuresBefore };
  const ownFailures = ownFailuresBefore + 1;
  return { action: ownFailures >= POISON_ATTEMPTS ? 'abort' : 'retry', ownFailures };
}
