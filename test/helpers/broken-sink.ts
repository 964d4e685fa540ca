import { FileSink, type FinalizeFence, type Summary } from 'pullq';

/** A sink that breaks the protocol on purpose, for the kit's own test: a repeated finalize outputs the parts twice. */
export class AppendingSink extends FileSink {
  private finalized = new Set<string>();

  override async finalize(run: string, parts: string[], summary: Summary, extraFailed: () => AsyncIterable<string[]>, fence?: FinalizeFence): Promise<void> {
    const again = this.finalized.has(run);
    this.finalized.add(run);
    await super.finalize(run, again ? [...parts, ...parts] : parts, summary, extraFailed, fence);
  }
}
