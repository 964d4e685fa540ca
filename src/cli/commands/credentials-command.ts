import type { CredentialInfo } from '../../api/list-credentials.js';
import { openPullq, type GlobalFlags } from '../command-context.js';

/**
 * `pullq credentials [--json]`: the pool as the fleet sees it now, one line per credential (name, kind,
 * source, state); `--json` prints `{ "credentials": [...] }`. Sends no request. Exit 0; a config or
 * Redis error is one line on stderr and exit 1 (main.ts).
 */
export async function credentialsCommand(flags: GlobalFlags & { json?: boolean }): Promise<number> {
  const { pullq } = openPullq(flags, { connection: 'brief', defaultLogLevel: 'warn', logFormat: 'human' });
  try {
    const credentials = await pullq.credentials();
    process.stdout.write(flags.json ? `${JSON.stringify({ credentials })}\n` : credentialsText(credentials));
    return 0;
  } finally {
    await pullq.close();
  }
}

/** The human table: aligned columns, the state last (a quarantine's reason is the longest cell). */
export function credentialsText(credentials: readonly CredentialInfo[]): string {
  const rows = credentials.map((c) => [c.name, c.kind, c.source, stateText(c)]);
  const head = ['credential', 'kind', 'source', 'state'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  return `${[line(head), ...rows.map(line)].join('\n')}\n`;
}

function stateText(c: CredentialInfo): string {
  if (c.state === 'resting') return `resting until ${c.until}`;
  if (c.state === 'quarantined') return `quarantined: ${c.reason ?? 'unauthorized'} (until ${c.until})`;
  return 'ok';
}
