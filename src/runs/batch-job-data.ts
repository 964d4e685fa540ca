/** Data of one BullMQ job: a reference to a batch of IDs kept in Redis (never a secret). */
export interface BatchJobData {
  run: string;
  batch: number;
}
