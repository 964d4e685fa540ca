/**
 * An in-memory sliding-window limiter of one process, as a plain worker would
 * write it: at most `requests` starts in any `windowMs`. Starts are reserved in
 * order, each at least `windowMs` after the start `requests` places before it.
 */
export class SlidingWindowLimiter {
  /** The last `requests` reserved starts, ascending. */
  private readonly starts: number[] = [];

  constructor(
    readonly requests: number,
    readonly windowMs: number,
  ) {}

  /** Earliest time a start could be reserved now. */
  nextFree(now: number): number {
    let t = Math.max(now, this.starts[this.starts.length - 1] ?? now);
    if (this.starts.length >= this.requests) t = Math.max(t, this.starts[0]! + this.windowMs);
    return t;
  }

  /** Reserves the earliest start and returns it (epoch ms). */
  reserve(now: number): number {
    const t = this.nextFree(now);
    this.starts.push(t);
    if (this.starts.length > this.requests) this.starts.shift();
    return t;
  }
}
