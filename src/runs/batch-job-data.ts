/** Data of one BullMQ job: a reference to a batch of IDs kept in Redis (never a secret). */
export interface BatchJobData {
  run: string;
  batch: number;
  /** Attempts of this job that failed for the batch's own reason (not a blip): POISON_ATTEMPTS of them abort the run. */
  ownFailures?: number;
  /** Attempts of this job that hit a blip (Redis or the database briefly away): they set its wait, never end it. */
  blips?: number;
}

/** The BullMQ job id of a batch: fixed, so adding a batch's job again is a no-op while it exists. */
export function batchJobId(run: string, batch: number): string {
  return `${run}.b${batch}`;
}
