import { readFile } from 'node:fs/promises';
import type { CredentialConfig } from '../config.js';
import { ConfigError } from '../errors.js';
import type { Logger } from '../logger.js';

/** How often the credentials file is read to see whether it changed (a rotation reaches a replica within this, plus a reload). */
export const CREDENTIALS_POLL_MS = 2_000;
/** New bytes are taken only when a second read this much later finds the same: a file rewritten in place is not read half-written. */
export const SETTLE_MS = 150;

/** The watchers of this process that SIGHUP re-reads: one process listener for all of them (a pull runs several workers). */
const hupListeners = new Set<() => void>();
const onProcessHup = () => {
  for (const l of hupListeners) l();
};
function listenHup(l: () => void): () => void {
  if (hupListeners.size === 0) process.on('SIGHUP', onProcessHup);
  hupListeners.add(l);
  return () => {
    hupListeners.delete(l);
    if (hupListeners.size === 0) process.off('SIGHUP', onProcessHup);
  };
}

/** What the pool does with a set read from the file: swaps it in, or throws (a ConfigError, e.g. two entries with the same secret). */
export interface CredentialSetTarget {
  /** How many credentials are in force now. */
  readonly size: number;
  /** Replaces the set; says what changed. */
  replace(list: CredentialConfig[]): Promise<{ added: number; removed: number; changed: number; size: number }>;
}

export interface WatchOptions {
  /** The file (absolute): auth.tokensFile or auth.credentialsFile. */
  file: string;
  /** Reads and checks the file (config.ts readCredentialSet): the new set, or a ConfigError saying why. */
  read(): CredentialConfig[];
  target: CredentialSetTarget;
  logger: Logger;
  pollMs?: number;
  /** Re-read at once on SIGHUP (default true); the listener also keeps Node from exiting on SIGHUP. */
  sighup?: boolean;
}

export interface CredentialWatch {
  /** Reads the file now and applies it when it changed (`force`: re-read even when its bytes did not change). */
  check(force?: boolean): Promise<void>;
  close(): void;
}

/**
 * Watches a credentials file by polling its content (a read every `pollMs`): a rewrite in place, a rename over
 * the file (Vault agent) and a Kubernetes secret volume's `..data` symlink swap all show up as new bytes at the
 * path, where fs.watch on the file itself would keep watching the old inode. SIGHUP reads it at once.
 *
 * A changed set is handed to the pool, with one info line `credentials reloaded from <file>: N in force (+a, -r)`;
 * a file that cannot be read, does not parse, lists nothing or that the pool refuses gives one warning
 * `credentials file <file> refused (<why>); keeping the N in force`, once per bad content. The reason comes from
 * a ConfigError, which never quotes the file.
 */
export function watchCredentials(o: WatchOptions): CredentialWatch {
  const pollMs = o.pollMs ?? CREDENTIALS_POLL_MS;
  /** The bytes last acted on (applied, found equal, or refused), or the read error's code. */
  let last: string | undefined;
  let closed = false;
  /** A set that could not be taken in for a reason other than the file (said once until it works). */
  let failing = false;
  /** One check at a time: a SIGHUP during a poll waits for it, then reads again. */
  let running: Promise<void> = Promise.resolve();

  const once = async (force: boolean): Promise<void> => {
    const seen = await readBytes(o.file);
    if (closed || (seen === last && !force)) return;
    if (seen !== last) {
      // Being written (an editor or a script rewriting it in place): take it once it holds still.
      await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
      if (closed || (await readBytes(o.file)) !== seen) return;
    }
    last = seen;
    let list: CredentialConfig[];
    try {
      list = o.read();
      const r = await o.target.replace(list);
      failing = false;
      if (r.added === 0 && r.removed === 0 && r.changed === 0) {
        if (force) o.logger.info({ file: o.file, credentials: r.size }, `credentials file ${o.file} re-read: unchanged, ${r.size} in force`);
        return;
      }
      o.logger.info(
        { file: o.file, credentials: r.size, added: r.added, removed: r.removed, changed: r.changed },
        `credentials reloaded from ${o.file}: ${r.size} in force (+${r.added}, -${r.removed}${r.changed ? `, ${r.changed} changed` : ''})`,
      );
    } catch (err) {
      if (!(err instanceof ConfigError)) {
        // Not the file's fault (Redis away while a new credential was prepared): try the same content again at the next poll.
        last = undefined;
        // Named by its code only: an error from below may carry anything.
        const code = String((err as { code?: unknown })?.code ?? (err as Error)?.name ?? 'error');
        if (!failing) o.logger.warn({ file: o.file, err: { code } }, `credentials file ${o.file}: could not take the new set in yet (${code}); keeping the ${o.target.size} in force, trying at the next check`);
        failing = true;
        return;
      }
      const why = reasonOf(err, o.file);
      o.logger.warn({ file: o.file, reason: why, credentials: o.target.size }, `credentials file ${o.file} refused (${why}); keeping the ${o.target.size} in force`);
    }
  };
  const check = (force = false): Promise<void> => {
    running = running.then(() => once(force)).catch((err: unknown) => o.logger.warn({ err: { message: (err as Error)?.message } }, `credentials file ${o.file}: check failed`));
    return running;
  };

  const timer = setInterval(() => void check(), pollMs);
  timer.unref();
  const unlistenHup = o.sighup !== false ? listenHup(() => void check(true)) : () => undefined;
  // The set in force was read at start-up: a change since then (or a bad file now) is seen at once.
  void check();
  return {
    check,
    close() {
      closed = true;
      clearInterval(timer);
      unlistenHup();
    },
  };
}

/** The file's text, or a marker of the read error's code (a missing file is a content too: refused once). */
async function readBytes(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    return `\0${(err as NodeJS.ErrnoException).code ?? 'error'}`;
  }
}

/** A refusal's reason, without the file name the ConfigError's message begins with (the warning names it already). */
function reasonOf(err: unknown, file: string): string {
  const message = (err as Error)?.message ?? String(err);
  const at = message.indexOf(file);
  return (at >= 0 ? message.slice(at + file.length).replace(/^:\s*/, '') : message.replace(/^[^:]*:\s*/, '')) || message;
}
