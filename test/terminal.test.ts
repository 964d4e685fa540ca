import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { createBlockRedraw, createStatusLine, CLEAR_LINE, fitLine, rowsOf } from '../src/cli/terminal-line.js';
import { startProgress } from '../src/cli/progress.js';
import { createLogger } from '../src/logger.js';
import type { RunStatus } from '../src/runs/run-store.js';
import { FakeTty, replay } from './helpers/vt-screen.js';

// What a person sees on a terminal: the bytes pullq writes, replayed by a small terminal (helpers/vt-screen.ts).

class Capture extends Writable {
  bytes = '';
  override _write(chunk: string | Buffer, _enc: BufferEncoding, done: () => void): void {
    this.bytes += chunk.toString();
    done();
  }
}

const status = (finished: number): RunStatus =>
  ({ run: 'r1', total: 100, succeeded: finished, failed: 0, pending: 100 - finished, sealed: true }) as RunStatus;

describe('the status line and the log lines', () => {
  it('interleaved logs and redraws: every log line starts at column 0, whole, and the status line stays last', () => {
    const tty = new FakeTty(100);
    const line = createStatusLine(tty);
    const logger = createLogger('info', 'human', { write: (l) => line.print(l) });
    const logged: string[] = [];
    for (let i = 0; i < 40; i++) {
      line.draw(`run r1: ${i}/40 · ${i} ok · 0 failed · ${i * 7}/s · ETA ${40 - i}s`);
      if (i % 3 === 0) {
        logger.warn(`credential fp-${i} is quarantined (unauthorized); the others carry on`);
        logged.push(`pullq: warning: credential fp-${i} is quarantined (unauthorized); the others carry on`);
      }
      if (i % 7 === 0) {
        line.print(`pullq: note ${i}`);
        logged.push(`pullq: note ${i}`);
      }
    }
    // Bytes: a log line is written at the start of the output, after a newline, or right after clearing the line.
    for (const m of tty.bytes.matchAll(/pullq: /g)) {
      const before = tty.bytes.slice(Math.max(0, m.index - CLEAR_LINE.length), m.index);
      expect(m.index === 0 || before.endsWith('\n') || before === CLEAR_LINE, `log at byte ${m.index} follows ${JSON.stringify(before)}`).toBe(true);
    }
    // Screen: the log lines in order, each on its own row, then the last status line.
    const rows = tty.screen();
    expect(rows).toEqual([...logged, 'run r1: 39/40 · 39 ok · 0 failed · 273/s · ETA 1s']);
    line.clear();
    expect(tty.screen().at(-1)).toBe('');
  });

  it('before any status line is drawn, and after it is cleared, a log line is written as it is', () => {
    const tty = new FakeTty(80);
    const line = createStatusLine(tty);
    line.print('pullq: warning: first');
    line.draw('progress');
    line.clear();
    line.print('pullq: warning: second\n');
    expect(tty.bytes).toBe(`pullq: warning: first\n${CLEAR_LINE}progress${CLEAR_LINE}pullq: warning: second\n`);
    expect(tty.screen()).toEqual(['pullq: warning: first', 'pullq: warning: second', '']);
  });

  it('a status line wider than the terminal is cut, never wrapped (a wrapped line could not be cleared)', () => {
    const tty = new FakeTty(20);
    const line = createStatusLine(tty);
    line.draw('x'.repeat(50));
    line.print('pullq: info: hello');
    line.draw('short');
    expect(tty.screen()).toEqual(['pullq: info: hello', 'short']);
  });

  it('not a TTY: no status line at all, log lines unchanged', () => {
    const out = new Capture();
    const line = createStatusLine(out);
    const logger = createLogger('info', 'human', { write: (l) => line.print(l) });
    line.draw('progress');
    logger.info('credential ci-bot is rate limited: resting until 2026-01-01T00:00:00.000Z');
    line.print('pullq: run r1 is already enqueued');
    line.clear();
    expect(line.live).toBe(false);
    expect(out.bytes).toBe('pullq: info: credential ci-bot is rate limited: resting until 2026-01-01T00:00:00.000Z\npullq: run r1 is already enqueued\n');
  });

  it.each([
    ['short', 80, 'short'],
    ['exactly nineteen ch', 20, 'exactly nineteen ch'],
    ['twenty characters!!!', 20, 'twenty characters!…'],
    ['a\nb', 80, 'a b'],
    ['no width known', undefined, 'no width known'],
  ] as const)('fitLine(%j, %s) = %j', (text, columns, expected) => {
    expect(fitLine(text, columns)).toBe(expected);
    if (columns) expect([...fitLine(text, columns)].length).toBeLessThan(columns);
  });

  it('progress: draws on a TTY, stops cleanly (a read still under way draws nothing), never reads when not a TTY', async () => {
    const tty = new FakeTty(80);
    let reads = 0;
    let release: (() => void) | undefined;
    const stop = startProgress(async () => {
      reads++;
      if (reads === 3) await new Promise<void>((r) => (release = r));
      return status(reads * 10);
    }, createStatusLine(tty), 20);
    while (reads < 3) await sleep(5);
    stop();
    release!();
    await sleep(20);
    expect(tty.bytes.endsWith(CLEAR_LINE)).toBe(true);
    expect(tty.screen()).toEqual(['']);
    expect(tty.bytes).toContain('r1: 20/100 20%');

    let nonTtyReads = 0;
    const out = new Capture();
    const stop2 = startProgress(async () => {
      nonTtyReads++;
      return status(1);
    }, createStatusLine(out), 5);
    await sleep(40);
    stop2();
    expect(nonTtyReads).toBe(0);
    expect(out.bytes).toBe('');
  });
});

describe('a block redrawn in place (status --watch)', () => {
  it.each([
    ['one', 80, 1],
    ['one\ntwo\n', 80, 2],
    [`${'x'.repeat(80)}\n`, 80, 1],
    [`${'x'.repeat(81)}\nb`, 80, 3],
    ['', 80, 1],
  ] as const)('rowsOf(%j, %d) = %d', (text, columns, rows) => {
    expect(rowsOf(text, columns)).toBe(rows);
  });

  it('on a TTY each refresh replaces the last block, whatever their heights; what was above stays', () => {
    const tty = new FakeTty(30);
    tty.write('$ pullq status --watch\n');
    const block = createBlockRedraw(tty);
    block.show('run r1 (running)\nsucceeded 1\n');
    block.show(`run r1 (running)\nsucceeded 2\n${'w'.repeat(45)}\nlast\n`);
    block.show('run r1 (complete)\nsucceeded 3\n');
    expect(tty.screen()).toEqual(['$ pullq status --watch', 'run r1 (complete)', 'succeeded 3', '']);
  });

  it('not a TTY: every refresh is a new block after a blank line', () => {
    const out = new Capture();
    const block = createBlockRedraw(out);
    block.show('a\n');
    block.show('b');
    expect(out.bytes).toBe('a\n\nb\n');
    expect(replay(out.bytes, 80)).toEqual(['a', '', 'b', '']);
  });
});
