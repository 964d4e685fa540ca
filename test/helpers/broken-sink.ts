import { rm } from 'node:fs/promises';
import path from 'node:path';
import { FileSink, type FinalizeFence, type Summary } from 'pullq';

/** A sink that breaks the protocol on purpose, for the kit's own test: a repeated finalize outputs the parts twice. */
export class AppendingSink extends FileSink {
  private finalized = new Set<string>();

  override async finalize(run: string, parts: string[], summary: Summary, extraFailed: () => AsyncIterable<string[]>, fence?: FinalizeFence): Promise<void> {
    const again = this.finalized.has(run);
    this.finalized.add(run);
    // Without its summary.json, FileSink takes the run for unpublished and writes the output again.
    if (again) await rm(path.join(this.dir, run, 'summary.json'), { force: true });
    await super.finalize(run, again ? [...parts, ...parts] : parts, summary, extraFailed, fence);
  }
}
