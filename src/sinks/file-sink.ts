import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm, unlink } from 'node:fs/promises';
import path from 'node:path';
import { once } from 'node:events';
import type { FailedLine, ResultLine, Sink, Summary } from './sink.js';

/**
 * The SPEC's file output: out/<run>/{results,failed}.jsonl and summary.json.
 * Parts live in out/<run>/parts/ until the run is finalized. Replicas on
 * several machines must share `dir` (a volume); otherwise use the Postgres sink.
 */
export class FileSink implements Sink {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  location(run: string): string {
    const dir = path.join(this.dir, run);
    return `${dir}/results.jsonl, failed.jsonl, summary.json`;
  }

  private partsDir(run: string): string {
    return path.join(this.dir, run, 'parts');
  }

  private partFile(run: string, part: string, kind: 'results' | 'failed'): string {
    return path.join(this.partsDir(run), `${part}.${kind}.jsonl`);
  }

  async writePart(run: string, part: string, results: ResultLine[], failures: FailedLine[]): Promise<void> {
    await mkdir(this.partsDir(run), { recursive: true });
    await writeDurably(this.partFile(run, part, 'results'), results.map(toLine).join(''));
    await writeDurably(this.partFile(run, part, 'failed'), failures.map(toLine).join(''));
  }

  async discardPart(run: string, part: string): Promise<void> {
    await Promise.all((['results', 'failed'] as const).map((k) => unlink(this.partFile(run, part, k)).catch(() => undefined)));
  }

  async finalize(run: string, parts: string[], summary: Summary, extraFailed: () => AsyncIterable<string[]>): Promise<void> {
    const runDir = path.join(this.dir, run);
    await mkdir(runDir, { recursive: true });
    for (const kind of ['results', 'failed'] as const) {
      const target = path.join(runDir, `${kind}.jsonl`);
      const tmp = `${target}.tmp-${process.pid}`;
      const out = createWriteStream(tmp);
      const failed = new Promise<never>((_, reject) => out.once('error', reject));
      failed.catch(() => undefined);
      for (const part of parts) {
        for await (const chunk of createReadStream(this.partFile(run, part, kind))) {
          if (!out.write(chunk)) await Promise.race([once(out, 'drain'), failed]);
        }
      }
      if (kind === 'failed') {
        for await (const lines of extraFailed()) {
          if (!out.write(`${lines.join('\n')}\n`)) await Promise.race([once(out, 'drain'), failed]);
        }
      }
      await Promise.race([new Promise<void>((resolve) => out.end(resolve)), failed]);
      await fsyncPath(tmp);
      await rename(tmp, target);
    }
    const summaryFile = path.join(runDir, 'summary.json');
    await writeDurably(`${summaryFile}.tmp-${process.pid}`, `${JSON.stringify(summary, null, 2)}\n`);
    await rename(`${summaryFile}.tmp-${process.pid}`, summaryFile);
  }

  async cleanup(run: string): Promise<void> {
    await rm(this.partsDir(run), { recursive: true, force: true });
  }
}

function toLine(value: ResultLine | FailedLine): string {
  return `${JSON.stringify(value)}\n`;
}

async function writeDurably(file: string, text: string): Promise<void> {
  const fh = await open(file, 'w');
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function fsyncPath(file: string): Promise<void> {
  const fh = await open(file, 'r+');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
