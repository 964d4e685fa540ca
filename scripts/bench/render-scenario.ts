import { markdownTable } from './markdown-table.js';
import type { ScenarioResult, TargetRow } from './scenario-result.js';

const verdict = (t: TargetRow) => (t.met === null ? '–' : t.met ? 'met' : '**not met**');

/** One scenario as Markdown: its setup paragraph (optional), the targets table, detail tables, notes. */
export function renderScenario(s: ScenarioResult, options: { heading: string; setup: boolean }): string {
  const out: string[] = [options.heading, ''];
  if (options.setup && s.setup) out.push(s.setup, '');
  out.push(markdownTable(['figure', 'pullq', 'compared with', 'target', ''], s.targets.map((t) => [t.figure, t.measured, t.comparison, t.target, verdict(t)])), '');
  for (const t of s.tables) out.push(`${t.caption}:`, '', markdownTable(t.columns, t.rows), '');
  if (s.notes.length) out.push(...s.notes.map((n) => `- ${n}`), '');
  return out.join('\n');
}
