import { openPullq, type GlobalFlags } from '../command-context.js';

/**
 * `pullq check [--id ID] [--json]`: one probe request per credential, within
 * its fleet-wide budget; says which are valid, rejected (401), forbidden or
 * exhausted. Exit 0 when every credential is valid, 2 when any is not.
 */
export async function checkCommand(flags: GlobalFlags & { id?: string; json?: boolean }): Promise<number> {
  const { pullq } = openPullq(flags, { connection: 'brief', defaultLogLevel: 'warn', logFormat: 'human' });
  try {
    const r = await pullq.check({ id: flags.id });
    if (flags.json) process.stdout.write(`${JSON.stringify({ probeId: r.probeId, credentials: r.credentials })}\n`);
    else {
      const width = Math.max(10, ...r.credentials.map((p) => p.credential.length));
      process.stdout.write(`${r.credentials.map((p) => `${p.credential.padEnd(width)}  ${p.verdict.padEnd(9)}  ${p.detail}`).join('\n')}\n`);
    }
    return r.ok ? 0 : 2;
  } finally {
    await pullq.close();
  }
}
