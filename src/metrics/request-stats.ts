import type { Registry } from 'prom-client';

/** Upper bounds (seconds) of pullq_request_duration_seconds. */
export const DURATION_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

interface PerCredential {
  /** Requests by status class. */
  byClass: Map<string, number>;
  /** Cumulative counts per upper bound, then +Inf (= count). */
  buckets: Float64Array;
  sum: number;
  count: number;
}

type Value = { labels: Record<string, string | number>; value: number; metricName?: string };

/**
 * pullq_requests_total and pullq_request_duration_seconds, counted on every
 * request with plain numbers (no label hashing or validation per request:
 * prom-client's were the largest part of what metrics cost a worker) and
 * handed to the registry as ordinary metrics when it is scraped.
 */
export class RequestStats {
  private readonly byCredential = new Map<string, PerCredential>();

  constructor(registry: Registry) {
    const metric = (name: string, help: string, type: 'counter' | 'histogram', values: () => Value[]) => {
      // The shape prom-client's registry reads from a metric: its name, and get() giving help, type and values.
      registry.registerMetric({ name, help, type, get: async () => ({ name, help, type, aggregator: 'sum', values: values() }) } as never);
    };
    metric('pullq_requests_total', 'Requests answered (or failed without an answer: network), by credential and status class', 'counter', () => this.requestValues());
    metric('pullq_request_duration_seconds', 'Time from sending a request to its full answer', 'histogram', () => this.durationValues());
  }

  record(credential: string, statusClass: string, seconds: number): void {
    let c = this.byCredential.get(credential);
    if (!c) this.byCredential.set(credential, (c = { byClass: new Map(), buckets: new Float64Array(DURATION_BUCKETS.length), sum: 0, count: 0 }));
    c.byClass.set(statusClass, (c.byClass.get(statusClass) ?? 0) + 1);
    for (let i = 0; i < DURATION_BUCKETS.length; i++) {
      if (seconds <= DURATION_BUCKETS[i]!) {
        c.buckets[i]!++;
        break;
      }
    }
    c.sum += seconds;
    c.count++;
  }

  private requestValues(): Value[] {
    const out: Value[] = [];
    for (const [credential, c] of this.byCredential) for (const [cls, n] of c.byClass) out.push({ labels: { credential, status_class: cls }, value: n });
    return out;
  }

  private durationValues(): Value[] {
    const out: Value[] = [];
    for (const [credential, c] of this.byCredential) {
      let cumulative = 0;
      for (let i = 0; i < DURATION_BUCKETS.length; i++) {
        cumulative += c.buckets[i]!;
        out.push({ labels: { le: DURATION_BUCKETS[i]!, credential }, value: cumulative, metricName: 'pullq_request_duration_seconds_bucket' });
      }
      out.push({ labels: { le: '+Inf', credential }, value: c.count, metricName: 'pullq_request_duration_seconds_bucket' });
      out.push({ labels: { credential }, value: c.sum, metricName: 'pullq_request_duration_seconds_sum' });
      out.push({ labels: { credential }, value: c.count, metricName: 'pullq_request_duration_seconds_count' });
    }
    return out;
  }
}
