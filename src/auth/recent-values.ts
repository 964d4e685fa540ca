/** How many secrets learnt at run time (access tokens, rotated refresh tokens) a credential keeps for scrubbing. */
export const RECENT_SECRETS = 8;

/**
 * The last `limit` distinct values added (oldest dropped first; adding one again makes it the newest): the
 * tokens a credential learnt while running, scrubbed from every log line, so their number stays bounded
 * however long the process runs. A token older than the last `limit` is long expired (or rotated away).
 */
export class RecentValues implements Iterable<string> {
  private readonly values = new Set<string>();
  constructor(private readonly limit = RECENT_SECRETS) {}

  add(value: string): this {
    this.values.delete(value);
    this.values.add(value);
    if (this.values.size > this.limit) this.values.delete(this.values.values().next().value as string);
    return this;
  }

  get size(): number {
    return this.values.size;
  }

  [Symbol.iterator](): Iterator<string> {
    return this.values[Symbol.iterator]();
  }
}
