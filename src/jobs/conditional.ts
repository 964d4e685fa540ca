import type { ResultLine } from '../sinks/sink.js';
import { validatorsOf, type ValidatorEntry, type Validators } from '../sinks/validators.js';
import { seriesOf } from '../runs/series.js';
import type { BatchContext, IdOutcome } from './batch-context.js';
import type { FetchResult } from './fetch-id.js';

// Conditional re-pulls (request.conditional, issue #13): what one ID sends and
// writes. The validators come from the sink (the last complete run of the
// run's series, src/runs/series.ts), looked up per batch: a worker never holds
// a whole run's validators. What a 304 means is decided in src/policy/decide.ts.

/** One ID's part of a conditional re-pull. */
export interface Conditional {
  /** The ID's validators (and data, with output.carryUnchanged) from the last complete run, if it had any. */
  prior?: ValidatorEntry;
  /** output.carryUnchanged: a 304 is written with the prior data. */
  carry: boolean;
}

const noSeriesLogged = new Set<string>();

/**
 * The conditional part of each ID of a batch, or undefined when the run is not
 * pulled conditionally (request.conditional off, or a run name without a UTC
 * stamp, which belongs to no series). One sink lookup for the whole batch.
 */
export async function conditionalsFor(ctx: BatchContext, run: string, ids: string[]): Promise<((id: string) => Conditional) | undefined> {
  if (!ctx.config.request.conditional || !ctx.sink.lookupValidators) return undefined;
  const series = seriesOf(run, ctx.config.queue);
  if (series === null) {
    if (!noSeriesLogged.has(run)) {
      noSeriesLogged.add(run);
      ctx.logger.warn({ run }, `run ${run} has no UTC stamp in its name, so it belongs to no series: it is pulled without validators (request.conditional)`);
    }
    return undefined;
  }
  const found = await ctx.sink.lookupValidators(series, ids);
  const carry = ctx.config.output.carryUnchanged;
  return (id) => ({ prior: found.get(id), carry });
}

/**
 * The validators an ID's request sends, or undefined. With output.carryUnchanged
 * only an ID whose prior data was kept is asked conditionally: a 304 for any
 * other could not be written with its data.
 */
export function validatorsToSend(c: Conditional | undefined): ValidatorEntry | undefined {
  const prior = c?.prior;
  if (!prior || (prior.etag === undefined && prior.lastModified === undefined)) return undefined;
  if (c.carry && !prior.hasData) return undefined;
  return prior;
}

/**
 * A 2xx outcome with the validators its answer carried, kept for the next run
 * of the series under `stored` (the ID as the batch holds it: a multi-column
 * row's whole key).
 */
export function withValidators(outcome: IdOutcome, stored: string, res: FetchResult, c: Conditional | undefined): IdOutcome {
  if (!c || outcome.kind !== 'result') return outcome;
  const v = validatorsOf(res.headers);
  if (!v) return outcome;
  return { ...outcome, validators: entry(stored, v, c.carry, outcome.line.data) };
}

/**
 * A 304's outcome: `{"id", "status": 304, "unchanged": true, "fetchedAt"}`, with
 * the prior data under output.carryUnchanged. Its validators carry forward to the
 * next run (updated by any the 304 itself sent, RFC 9110 §15.4.5).
 */
export function unchangedOutcome(stored: string, id: string, res: FetchResult, sent: ValidatorEntry, c: Conditional): { kind: 'result'; line: ResultLine; validators: ValidatorEntry } {
  const fetchedAt = new Date().toISOString();
  const line: ResultLine = c.carry ? { id, status: 304, unchanged: true, fetchedAt, data: sent.data } : { id, status: 304, unchanged: true, fetchedAt };
  const now = validatorsOf(res.headers);
  const v: Validators = {};
  const etag = now?.etag ?? sent.etag;
  const lastModified = now?.lastModified ?? sent.lastModified;
  if (etag !== undefined) v.etag = etag;
  if (lastModified !== undefined) v.lastModified = lastModified;
  return { kind: 'result', line, validators: entry(stored, v, c.carry, sent.data) };
}

function entry(id: string, v: Validators, carry: boolean, data: unknown): ValidatorEntry {
  return carry ? { id, ...v, data, hasData: true } : { id, ...v };
}
