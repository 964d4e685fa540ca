import { fmt } from './format.js';
import type { MachineInfo } from './machine-info.js';
import { markdownTable } from './markdown-table.js';
import { renderScenario } from './render-scenario.js';
import type { ScenarioResult } from './scenario-result.js';

/** BENCHMARKS.md: machine, versions, a summary, one section per scenario, how to run. */
export function renderReport(machine: MachineInfo, scenarios: ScenarioResult[], options: { quick: boolean; totalMs: number; roundNotes?: string }): string {
  const out: string[] = [];
  out.push('# pullq benchmarks', '');
  out.push(
    `Written by \`npm run bench\`${options.quick ? ' (--quick: short runs, rough figures)' : ''} on ${machine.date.slice(0, 10)}; the whole run took ${fmt.s(options.totalMs)}. ` +
      'Every figure is measured against its alternatives in the same run, on a shared 2-core machine: expect a few percent of noise between runs. Raw figures: bench/results.json.',
    '',
  );
  out.push('## Machine', '');
  out.push(
    markdownTable(
      ['', ''],
      [
        ['CPU', `${machine.cpuModel}, ${machine.nproc} cores (nproc)`],
        ['memory', `${machine.memoryGiB} GiB`],
        ['OS', machine.os],
        ['Node', machine.node],
        ['Redis', machine.redis],
        ['packages', Object.entries(machine.packages).map(([k, v]) => `${k} ${v}`).join(', ')],
        ['pullq', `commit ${machine.pullqCommit ?? 'unknown'}${machine.pullqDirty ? ', with uncommitted changes under src/' : ''} (as built in dist/)`],
        ['date', machine.date],
      ],
    ),
    '',
  );
  out.push(
    'The example API runs in a separate Node process (scripts/bench/api-process.ts), so its event loop does not compete with the measuring one; workers are separate processes; all traffic is on 127.0.0.1. ' +
      'Redis is the one at $REDIS_URL (or 127.0.0.1:6379), except for the enqueue memory figures, which use a throw-away redis-server.',
    '',
  );
  out.push('## Summary', '');
  out.push(
    markdownTable(
      ['scenario', 'figure', 'pullq', 'target', ''],
      scenarios.flatMap((s) => s.targets.filter((t) => t.met !== null).map((t) => [s.title.replace(/ \(.*$/, ''), t.figure, t.measured, t.target, t.met ? 'met' : '**not met**'])),
    ),
    '',
  );
  // Hand-written before/after figures of the latest changes (bench/round-notes.md), kept across runs.
  if (options.roundNotes?.trim()) out.push(options.roundNotes.trim(), '');
  for (const s of scenarios) out.push(renderScenario(s, { heading: `## ${s.title}`, setup: true }), `(took ${fmt.s(s.durationMs)})`, '');
  out.push('## How to run', '');
  out.push(
    '`npm run build && npm run bench` (about 21 minutes; writes BENCHMARKS.md and bench/results.json). `npm run bench -- --quick` runs short versions in about 6 minutes (rough figures); `--no-write` only prints; `--only fleet-budgets,overhead` runs some scenarios and replaces only their sections and summary rows (the first line says which were re-run, when and at which commit). ' +
      'Needs Redis at $REDIS_URL or 127.0.0.1:6379 (or a `redis-server` binary), and `redis-server` for the memory figures.',
    '',
  );
  return out.join('\n');
}
