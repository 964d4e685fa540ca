import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { startExampleApi } from '../example-api-server.js';
import { startThirdPartyApi } from '../third-party-api.js';
import type { ApiProcessOptions, ApiStats } from './start-api-process.js';

// The example API in a child process of the benchmarks. argv[2] is the JSON
// of ApiProcessOptions. It says {type: 'ready', url} over IPC, answers
// {type: 'stats'} with its counters and a log of every item request, and exits
// on {type: 'close'}; {type: 'change', ids} bumps items' versions (answers {type: 'changed'}). The runner wraps the API's request handler to log and,
// for the Retry-After benchmark, to force 429s; the example API is unchanged.

const options = JSON.parse(process.argv[2] ?? '{}') as ApiProcessOptions;
// With `thirdParty` the API is third-party rate-limit middleware (third-party-api.ts) instead:
// its accepted requests are its 2xx answers.
const third = options.thirdParty ? await startThirdPartyApi(options.thirdParty) : undefined;
const api = third
  ? { server: third.server, url: third.url, close: third.close, totalRequests: () => third.log.length, requestsByCredential: new Map<string, number>(), rejectedByCredential: new Map<string, number>(), acceptedAt: new Map<string, number[]>(), change: (_: string[]) => undefined }
  : await startExampleApi({ ...options.api, host: '127.0.0.1', port: 0 });

const credentials: string[] = [];
const credIndex = new Map<string, number>();
const log = { t: [] as number[], cred: [] as number[], status: [] as number[] };

function credentialOf(req: IncomingMessage): string {
  const auth = options.api.auth ?? { type: 'none' };
  if (auth.type === 'header') {
    const raw = req.headers[(auth.header ?? 'authorization').toLowerCase()];
    const value = (Array.isArray(raw) ? raw[0] : raw) ?? '';
    const scheme = auth.scheme ?? 'Bearer';
    return scheme === '' ? value : value.replace(new RegExp(`^${scheme} `), '');
  }
  return '-';
}

const force = options.force429;
interface ForceState {
  served: number;
  nextForceAt: number;
  cyclesLeft: number;
  restUntil: number;
  resting: boolean;
}
const forceState = new Map<string, ForceState>();
force?.tokens.forEach((t, i) => forceState.set(t, { served: 0, nextForceAt: force.okFirst + i * force.stagger, cyclesLeft: force.cycles, restUntil: 0, resting: false }));
const forced: NonNullable<ApiStats['force429']>['forced'] = [];
const early: NonNullable<ApiStats['force429']>['early'] = [];
const gaps: NonNullable<ApiStats['force429']>['gaps'] = [];

function reject429(res: ServerResponse, retryAfterS: number): void {
  const body = JSON.stringify({ error: 'rate limit exceeded (forced by the benchmark)' });
  res.writeHead(429, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'retry-after': String(retryAfterS) });
  res.end(body);
}

/** True when the runner answered the request itself (a forced or early 429). */
function forced429(cred: string, now: number, res: ServerResponse): boolean {
  const s = forceState.get(cred);
  if (!s || !force) return false;
  if (s.resting) {
    if (now < s.restUntil) {
      early.push({ cred, at: now, until: s.restUntil });
      reject429(res, Math.max(1, Math.ceil((s.restUntil - now) / 1000)));
      return true;
    }
    gaps.push({ cred, ms: now - s.restUntil });
    s.resting = false;
    s.nextForceAt = s.served + 1 + force.okBetween;
  }
  if (s.cyclesLeft > 0 && s.served >= s.nextForceAt) {
    s.cyclesLeft--;
    s.resting = true;
    reject429(res, force.retryAfterS);
    s.restUntil = Date.now() + force.retryAfterS * 1000;
    forced.push({ cred, at: Date.now(), until: s.restUntil });
    return true;
  }
  s.served++;
  return false;
}

const original = api.server.listeners('request') as RequestListener[];
api.server.removeAllListeners('request');
api.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
  const now = Date.now();
  const isItem = (req.url ?? '').startsWith('/items');
  if (isItem) {
    const cred = credentialOf(req);
    let i = credIndex.get(cred);
    if (i === undefined) {
      i = credentials.length;
      credentials.push(cred);
      credIndex.set(cred, i);
    }
    const index = i;
    res.once('finish', () => {
      log.t.push(now);
      log.cred.push(index);
      log.status.push(res.statusCode);
      if (third) {
        if (res.statusCode < 300) {
          const times = api.acceptedAt.get(cred) ?? [];
          times.push(now);
          api.acceptedAt.set(cred, times);
        } else if (res.statusCode === 429) api.rejectedByCredential.set(cred, (api.rejectedByCredential.get(cred) ?? 0) + 1);
        api.requestsByCredential.set(cred, (api.requestsByCredential.get(cred) ?? 0) + 1);
      }
    });
    if (forced429(cred, now, res)) return;
  }
  for (const l of original) l.call(api.server, req, res);
});

const record = <V>(m: Map<string, V>) => Object.fromEntries(m);

process.on('message', (m: unknown) => {
  const msg = m as { type?: string };
  if (msg.type === 'stats') {
    const stats: ApiStats = {
      total: api.totalRequests(),
      requestsByCredential: record(api.requestsByCredential),
      rejectedByCredential: record(api.rejectedByCredential),
      acceptedAt: record(api.acceptedAt),
      log,
      credentials,
      force429: force ? { forced, early, gaps } : undefined,
    };
    process.send?.({ type: 'stats', stats });
  } else if (msg.type === 'change') {
    // Conditional re-pulls: items changed between two runs (example API with etags).
    api.change((msg as { ids?: string[] }).ids ?? []);
    process.send?.({ type: 'changed' });
  } else if (msg.type === 'close') {
    void api.close().then(() => process.exit(0));
  }
});
process.on('disconnect', () => void api.close().then(() => process.exit(0)));
process.send?.({ type: 'ready', url: api.url });
