import { CredentialPool } from '../auth/credential-pool.js';
import { CredentialRefusedError } from '../auth/credential-errors.js';
import { outgoingRequest } from '../jobs/outgoing-request.js';
import type { Config } from '../config.js';
import { InputError } from '../errors.js';
import { parseRateLimitHeaders } from '../http/rate-limit-headers.js';
import { requestTemplateOf } from '../ids/request-template.js';
import { fetchId } from '../jobs/fetch-id.js';
import { createHttpClient } from '../jobs/http-client.js';
import { scrubSecrets } from '../policy/scrub-secrets.js';
import type { Logger } from '../logger.js';
import type { Decision } from '../policy/decide.js';
import { newRetryState } from '../runs/run-store.js';
import type { Connected } from './pullq-context.js';

/** The ID a probe asks for when --id is not given: any answer but 401/403/429 proves the credential. */
export const PROBE_ID = 'pullq-check';

export interface Probe {
  credential: string;
  verdict: 'valid' | 'rejected' | 'forbidden' | 'exhausted' | 'error';
  status: number | null;
  detail: string;
}

/** What `check` found: the ID it asked for and one probe per credential. */
export interface CheckReport {
  probeId: string;
  credentials: Probe[];
  /** Every credential is valid. */
  ok: boolean;
}

/**
 * One probe request per credential, within its fleet-wide budget: says which
 * are valid, rejected (401), forbidden or exhausted.
 */
export async function checkCredentials(c: Connected, config: Config, logger: Logger, id: string | undefined): Promise<CheckReport> {
  const http = createHttpClient(config);
  const pool = await CredentialPool.open({ redis: c.redis, config, logger, http });
  // The probe ID stands for every column the templates name (a multi-column IDs file's row).
  const probeId = id ?? PROBE_ID;
  const template = requestTemplateOf(config);
  const rendered = template.render({ id: probeId, columns: Object.fromEntries([...template.names].map((n) => [n, probeId])) });
  if (!rendered.ok) throw new InputError(`--id ${JSON.stringify(id)} ${rendered.reason}`);
  const placed = rendered.request;
  const probes: Probe[] = [];
  for (const credential of pool.credentials) {
    const others = new Set(pool.credentials.filter((x) => x !== credential).map((x) => x.id));
    const got = await pool.acquire(others, 5000);
    if (got.kind !== 'granted') {
      const why = got.kind === 'wait' ? `resting or at its budget for ${Math.ceil(got.waitMs / 1000)} s more` : 'quarantined';
      probes.push({ credential: credential.label, verdict: 'exhausted', status: null, detail: `not probed: ${why}` });
      continue;
    }
    try {
      if (got.waitMs > 0) await new Promise((r) => setTimeout(r, got.waitMs));
      let request;
      try {
        request = await credential.apply(outgoingRequest(http, placed));
      } catch (err) {
        if (err instanceof CredentialRefusedError) await pool.quarantine(credential, err.reason);
        probes.push({ credential: credential.label, verdict: err instanceof CredentialRefusedError ? 'rejected' : 'error', status: null, detail: scrubSecrets((err as Error).message, pool.secrets()) });
        continue;
      }
      const res = await fetchId(http, { ...request, maxBodyBytes: config.request.maxBodyBytes, credential });
      const decision = await pool.answer(credential, request, res, newRetryState(), got.start);
      probes.push(describe(credential.label, res.status, res.headers ?? {}, res.errorCode, decision));
    } finally {
      await pool.endRequest(credential, got.lease);
    }
  }
  return { probeId: id ?? PROBE_ID, credentials: probes, ok: probes.every((p) => p.verdict === 'valid') };
}

/** A probe's verdict, as src/policy/decide.ts judged its answer (the headers only add the quota to the text). */
function describe(credential: string, status: number | null, headers: Record<string, string | string[] | undefined>, errorCode: string | undefined, decision: Decision): Probe {
  if (status === null) return { credential, verdict: 'error', status, detail: `no answer (${errorCode ?? 'error'})` };
  const signal = parseRateLimitHeaders(headers, Date.now());
  const limits = signal.limits.map((l) => `${l.requests}/${l.windowMs / 1000}s`).join(' + ');
  const quota = signal.remaining !== undefined ? ` · ${signal.remaining} left${limits ? ` of ${limits}` : ''}` : limits ? ` · limit ${limits}` : '';
  const c = decision.credential;
  if (c.verdict === 'limited') {
    return { credential, verdict: 'exhausted', status, detail: `HTTP ${status}, rate limited${c.restMs !== undefined ? ` for ${Math.ceil(c.restMs / 1000)} s` : ''}${quota}` };
  }
  if (c.verdict === 'unauthorized' || c.verdict === 'stale') return { credential, verdict: 'rejected', status, detail: `HTTP ${status}: the API does not accept this credential` };
  if (c.verdict === 'forbidden') return { credential, verdict: 'forbidden', status, detail: `HTTP ${status}: accepted but not allowed` };
  const id = decision.id;
  if (id.action === 'retry') return { credential, verdict: 'error', status, detail: `${id.message}: the API failed; try again` };
  return { credential, verdict: 'valid', status, detail: `HTTP ${status}${quota}` };
}
