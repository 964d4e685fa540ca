import { createWriteStream } from 'node:fs';

/** Writes an IDs file of `n` numeric IDs (10000000, 10000001, …), streamed in chunks. */
export async function writeIds(file: string, n: number): Promise<void> {
  const out = createWriteStream(file);
  const chunk = 10_000;
  for (let i = 0; i < n; i += chunk) {
    let s = '';
    for (let j = i; j < Math.min(n, i + chunk); j++) s += `${10_000_000 + j}\n`;
    if (!out.write(s)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((resolve) => out.end(resolve));
}
