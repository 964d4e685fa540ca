/** One figure of a scenario, beside what it is compared with and its target. */
export interface TargetRow {
  figure: string;
  measured: string;
  comparison: string;
  target: string;
  /** null: informative only, no target. */
  met: boolean | null;
}

/** A table of detail figures (contenders, phases, rounds). */
export interface DetailTable {
  caption: string;
  columns: string[];
  rows: string[][];
}

/** What one scenario hands to the report: tables for people, raw figures for bench/results.json. */
export interface ScenarioResult {
  id: string;
  title: string;
  /** One paragraph: what was run, on what, how it is measured. */
  setup: string;
  targets: TargetRow[];
  tables: DetailTable[];
  /** Observations, misses and their size, caveats. */
  notes: string[];
  raw: unknown;
  durationMs: number;
}
