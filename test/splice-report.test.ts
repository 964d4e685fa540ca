import { describe, expect, it } from 'vitest';
import type { MachineInfo } from '../scripts/bench/machine-info.js';
import type { ScenarioResult } from '../scripts/bench/scenario-result.js';
import { spliceReport } from '../scripts/bench/splice-report.js';

// `npm run bench -- --only x` rewrites only scenario x's section and summary rows of BENCHMARKS.md.

const machine: MachineInfo = { date: '2026-12-03T00:00:00.000Z', nproc: 2, cpuModel: 'cpu', memoryGiB: 1, os: 'os', node: 'v20', redis: '7', packages: {}, pullqCommit: 'abc1234', pullqDirty: false } as MachineInfo;
const scenario = (title: string, measured: string): ScenarioResult => ({
  id: title, title, setup: 'setup', targets: [{ figure: 'rate', measured, comparison: '', target: '≥ 1', met: true }], tables: [], notes: [], raw: {}, durationMs: 1000,
});
const existing = [
  '# pullq benchmarks', '', 'Written by `npm run bench` on 2026-12-02; the whole run took 10 s. Raw figures: bench/results.json.', '',
  '## Machine', '', '| a | b |', '',
  '## Summary', '', '| scenario | figure | pullq | target |  |', '|---|---|---|---|---|',
  '| 1. First | rate | 10 | ≥ 1 | met |', '| 2. Second | rate | 20 | ≥ 1 | met |', '',
  '## Changes measured this round (old notes)', '', 'old', '',
  '## 1. First (setup)', '', 'first body', '', '## 2. Second (setup)', '', 'second body', '', '## How to run', '', 'run it', '',
].join('\n');

describe('spliceReport', () => {
  it('replaces the re-run scenario and its summary rows, keeps the others, and says what was re-run', () => {
    const out = spliceReport(existing, machine, [scenario('2. Second (again)', '25')], { quick: false, totalMs: 5000, roundNotes: '## Changes measured this round (new notes)\n\nnew' });
    expect(out).toContain('| 1. First | rate | 10 | ≥ 1 | met |');
    expect(out).toContain('| 2. Second | rate | 25 | ≥ 1 | met |');
    expect(out).not.toContain('| 20 |');
    expect(out).toContain('first body');
    expect(out).not.toContain('second body');
    expect(out).toContain('## 2. Second (again)');
    expect(out).toContain('new notes');
    expect(out).not.toContain('old notes');
    expect(out).toMatch(/Scenario 2 re-run on 2026-12-03 at commit abc1234/);
    expect(out.indexOf('## 1. First')).toBeLessThan(out.indexOf('## 2. Second'));
    expect(out.indexOf('## 2. Second')).toBeLessThan(out.indexOf('## How to run'));
  });

  it('adds a new scenario after the others, and a second splice does not repeat the re-run note', () => {
    const once = spliceReport(existing, machine, [scenario('14. New one', '7')], { quick: true, totalMs: 1000 });
    const twice = spliceReport(once, machine, [scenario('14. New one', '8')], { quick: true, totalMs: 1000 });
    expect(twice).toContain('| 14. New one | rate | 8 | ≥ 1 | met |');
    expect(twice).not.toContain('| 7 |');
    expect(twice.match(/re-run on/g)?.length).toBe(2); // the "Written by" line once, the section's "(took …; re-run on …)" once
    expect(twice.indexOf('## 2. Second')).toBeLessThan(twice.indexOf('## 14. New one'));
  });
});
