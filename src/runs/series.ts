// Conditional re-pulls (request.conditional) send each ID's validators from
// the last complete run of the same *series*. A series is a run's name
// without its trailing UTC stamp: a schedule's ticks are `<schedule>-<stamp>`
// (tickRunName), and a manual `pullq pull ids.txt` without --run is
// `<ids-file label>-<stamp>` (runNameFor), so both form series with nothing
// stored: the nightly schedule "items" is the series "items", and a manual
// `pullq pull items.txt` joins it (same IDs file, same config: its
// validators are as good). A run named by hand without a stamp
// (`--run backfill`) is in no series: it is pulled without validators.

/** The `-20261122T174630Z` suffix of tickRunName / runNameFor (utcStamp). */
const STAMP_SUFFIX = /-\d{8}T\d{6}Z$/;

/**
 * The series of a run: the queue and the run's name without the trailing UTC
 * stamp, or null when its name has no stamp. The queue is part of it: two
 * configs sharing a sink directory or table never send each other's
 * validators to their APIs. Queue and run names are letters, digits, `. _ -`,
 * so the encoding is one-to-one: `<queue>.<name>` for a queue without a dot
 * (split at its first dot; the form series always had, so their validators
 * stay readable), `<queue>~<name>` for a queue with one (`~` is in neither
 * name), so queue `a` with run `b.c-…` and queue `a.b` with run `c-…` differ.
 */
export function seriesOf(run: string, queue: string): string | null {
  if (!STAMP_SUFFIX.test(run)) return null;
  const series = run.replace(STAMP_SUFFIX, '');
  if (series === '') return null;
  return queue.includes('.') ? `${queue}~${series}` : `${queue}.${series}`;
}
