import { fmt } from './format.js';
import type { MachineInfo } from './machine-info.js';
import { markdownTable } from './markdown-table.js';
import { renderScenario } from './render-scenario.js';
import type { ScenarioResult } from './scenario-result.js';

/** A scenario's number in the report ("7" of "7. Third-party rate limiters …"), or its whole title when it has none. */
function numberOf(title: string): string {
  return /^(\d+)\./.exec(title)?.[1] ?? title;
}

function byNumber(a: string, b: string): number {
  const na = Number(a);
  const nb = Number(b);
  return Number.isFinite(na) && Number.isFinite(nb) ? na - nb : a.localeCompare(b);
}

/**
 * BENCHMARKS.md after `npm run bench -- --only a,b`: the scenarios run now replace their sections and summary rows in
 * the report that was there (`existing`), the others stay as their last run wrote them, and the first line says which
 * were re-run, when and at which commit. A full run writes the whole report afresh (render-report.ts) instead.
 */
export function spliceReport(existing: string, machine: MachineInfo, scenarios: ScenarioResult[], options: { quick: boolean; totalMs: number; roundNotes?: string }): string {
  const lines = existing.split('\n');
  // Sections by "## " heading; what precedes the first one is the title and the "Written by" line.
  const sections: { heading: string; body: string[] }[] = [];
  const preamble: string[] = [];
  for (const line of lines) {
    if (line.startsWith('## ')) sections.push({ heading: line, body: [] });
    else if (sections.length === 0) preamble.push(line);
    else sections[sections.length - 1]!.body.push(line);
  }
  const rerun = new Map(scenarios.map((s) => [numberOf(s.title), s]));
  const summaryRow = (s: ScenarioResult) => s.targets.filter((t) => t.met !== null).map((t) => [s.title.replace(/ \(.*$/, ''), t.figure, t.measured, t.target, t.met ? 'met' : '**not met**']);

  // The summary: old rows of the scenarios not re-run, new rows of those that were, in scenario order.
  const summary = sections.find((s) => s.heading === '## Summary');
  const oldRows = new Map<string, string[]>();
  for (const row of summary?.body.filter((l) => l.startsWith('| ') && !l.startsWith('| scenario |') && !l.startsWith('|---')) ?? []) {
    const n = numberOf(row.slice(2));
    oldRows.set(n, [...(oldRows.get(n) ?? []), row]);
  }
  const numbers = [...new Set([...oldRows.keys(), ...rerun.keys()])].sort(byNumber);
  const newRows = numbers.flatMap((n) => (rerun.has(n) ? markdownTable(['scenario', 'figure', 'pullq', 'target', ''], summaryRow(rerun.get(n)!)).split('\n').slice(2) : oldRows.get(n)!));
  const header = markdownTable(['scenario', 'figure', 'pullq', 'target', ''], []).split('\n').slice(0, 2);

  const scenarioSections = new Map<string, string>();
  for (const s of sections.filter((x) => /^## \d+\. /.test(x.heading))) scenarioSections.set(numberOf(s.heading.slice(3)), [s.heading, ...s.body].join('\n').trimEnd());
  for (const [n, s] of rerun) {
    scenarioSections.set(n, [renderScenario(s, { heading: `## ${s.title}`, setup: true }), `(took ${fmt.s(s.durationMs)}; re-run on ${machine.date.slice(0, 10)} at commit ${machine.pullqCommit ?? 'unknown'}${options.quick ? ', --quick' : ''})`].join('\n').trimEnd());
  }

  const out: string[] = [];
  const written = preamble.find((l) => l.startsWith('Written by')) ?? '';
  const names = [...rerun.values()].map((s) => numberOf(s.title)).sort(byNumber).join(', ');
  out.push('# pullq benchmarks', '');
  out.push(`${written.replace(/ Scenarios? [\d, ]+ re-run .*?\.(?= |$)/, '')} Scenario${rerun.size > 1 ? 's' : ''} ${names} re-run on ${machine.date.slice(0, 10)} at commit ${machine.pullqCommit ?? 'unknown'} (\`--only\`, ${fmt.s(options.totalMs)}${options.quick ? ', --quick' : ''}).`.trim(), '');
  for (const s of sections) {
    if (s.heading === '## Summary') out.push(s.heading, '', ...header, ...newRows, '');
    else if (s.heading.startsWith('## Changes measured this round')) continue;
    else if (/^## \d+\. /.test(s.heading)) continue;
    else if (s.heading === '## How to run') continue;
    else out.push(s.heading, ...s.body);
    if (s.heading === '## Summary' && options.roundNotes?.trim()) out.push(options.roundNotes.trim(), '');
  }
  for (const n of [...scenarioSections.keys()].sort(byNumber)) out.push(scenarioSections.get(n)!, '');
  const howTo = sections.find((s) => s.heading === '## How to run');
  if (howTo) out.push(howTo.heading, ...howTo.body);
  return `${out.join('\n').trimEnd()}\n`;
}
