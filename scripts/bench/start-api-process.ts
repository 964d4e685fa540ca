import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExampleApiOptions } from '../example-api-server.js';
import type { ThirdPartyApiOptions } from '../third-party-api.js';
import { spawnChild, type Child } from './spawn-child.js';

/**
 * A 429 with Retry-After forced on chosen tokens, in cycles: after `okFirst`
 * (+ `stagger` × the token's index) served requests the token gets one 429 with
 * `Retry-After: retryAfterS`; the first request at or after that time is
 * served and timed; `okBetween` requests later the next cycle starts.
 */
export interface Force429 {
  tokens: string[];
  retryAfterS: number;
  cycles: number;
  okFirst: number;
  okBetween: number;
  stagger: number;
}

/** Options of the API child: the example API's own (JSON-safe) plus the runner's. */
export interface ApiProcessOptions {
  api: Omit<ExampleApiOptions, 'port' | 'host'>;
  /** Serve with third-party rate-limit middleware instead of the example API (api.auth still names the tokens). */
  thirdParty?: ThirdPartyApiOptions;
  force429?: Force429;
}

/** Everything the API child counted, sent to the parent over IPC. */
export interface ApiStats {
  total: number;
  requestsByCredential: Record<string, number>;
  rejectedByCredential: Record<string, number>;
  /** The example API's own accepted (within budget) request times per credential. */
  acceptedAt: Record<string, number[]>;
  /** Every item request as the runner saw it: arrival time (ms), credential index into `credentials`, final status. */
  log: { t: number[]; cred: number[]; status: number[] };
  credentials: string[];
  force429?: {
    /** Forced 429s: credential, time sent, Retry-After end. */
    forced: { cred: string; at: number; until: number }[];
    /** Requests that arrived on a credential before its Retry-After ended. */
    early: { cred: string; at: number; until: number }[];
    /** ms between the Retry-After end and the credential's next request (one per completed cycle). */
    gaps: { cred: string; ms: number }[];
  };
}

export interface ApiProcess {
  url: string;
  stats(): Promise<ApiStats>;
  /** Bumps the version of these items (example API with etags): their next request is answered 200. */
  change(ids: string[]): Promise<void>;
  close(): Promise<void>;
}

const here = path.dirname(fileURLToPath(import.meta.url));

/** Starts the example API in its own Node process (its event loop does not compete with the measuring one). */
export async function startApiProcess(options: ApiProcessOptions): Promise<ApiProcess> {
  const child: Child = spawnChild(process.execPath, [path.join(here, 'api-process.js'), JSON.stringify(options)], { label: 'api', ipc: true });
  const proc = child.child;
  const url = await new Promise<string>((resolve, reject) => {
    const onMessage = (m: unknown) => {
      const msg = m as { type?: string; url?: string };
      if (msg.type === 'ready' && msg.url) {
        proc.off('message', onMessage);
        resolve(msg.url);
      }
    };
    proc.on('message', onMessage);
    void child.done.then((r) => reject(new Error(`api process exited early (code ${r.code}): ${r.stderrTail.join(' | ')}`)));
  });
  return {
    url,
    stats: () =>
      new Promise<ApiStats>((resolve, reject) => {
        const onMessage = (m: unknown) => {
          const msg = m as { type?: string; stats?: ApiStats };
          if (msg.type === 'stats' && msg.stats) {
            proc.off('message', onMessage);
            resolve(msg.stats);
          }
        };
        proc.on('message', onMessage);
        if (!proc.send({ type: 'stats' })) reject(new Error('api process gone'));
      }),
    change: (ids) =>
      new Promise<void>((resolve, reject) => {
        const onMessage = (m: unknown) => {
          if ((m as { type?: string }).type === 'changed') {
            proc.off('message', onMessage);
            resolve();
          }
        };
        proc.on('message', onMessage);
        if (!proc.send({ type: 'change', ids })) reject(new Error('api process gone'));
      }),
    async close() {
      if (proc.connected) proc.send({ type: 'close' });
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await child.done;
      clearTimeout(timer);
    },
  };
}
