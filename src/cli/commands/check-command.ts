import { CredentialPool } from '../../auth/credential-pool.js';
import { OAuth2RefusedError } from '../../auth/oauth2-token-source.js';
import { parseRateLimitHeaders } from '../../http/rate-limit-headers.js';
import type { Decision } from '../../policy/decide.js';
import { newRetryState } from '../../runs/run-store.js';
import { InputError } from '../../errors.js';
import { requestTemplateOf } from '../../ids/request-template.js';
import { fetchId } from '../../jobs/fetch-id.js';
import { createHttpClient } from '../../jobs/http-client.js';
import { scrubSecrets } from '../../jobs/scrub-secrets.js';
import { openContext, type GlobalFlags } from '../command-context.js';

/** The ID a probe asks for when --id is not given: any answer but 401/403/429 proves the credential. */
export const PROBE_ID = 'pullq-check';

interface Probe {
  credential: string;
  verdict: 'valid' | 'rejected' | 'forbidden' | 'exhausted' | 'error';
  status: number | null;
  detail: string;
}

/**
 * `pullq check [--id ID] [--json]`: one probe request per credential, within
 * its fleet-wide budget; says which are valid, rejected (401), forbidden or
 * exhausted. Exit 0 when every credential is valid, 2 when any is not.
 */
export async function checkCommand(flags: GlobalFlags & { id?: string; json?: boolean }): Promise<number> {
  const ctx = await openContext(flags, { longLived: false, defaultLogLevel: 'warn', logFormat: 'human' });
  try {
    const http = createHttpClient(ctx.config);
    const pool = new CredentialPool({ redis: ctx.redis, config: ctx.config, logger: ctx.logger, http });
    // The probe ID stands for every column the templates name (a multi-column IDs file's row).
    const probeId = flags.id ?? PROBE_ID;
    const template = requestTemplateOf(ctx.config);
    const rendered = template.render({ id: probeId, columns: Object.fromEntries([...template.names].map((n) => [n, probeId])) });
    if (!rendered.ok) throw new InputError(`--id ${JSON.stringify(flags.id)} ${rendered.reason}`);
    const placed = rendered.request;
    const probes: Probe[] = [];
    for (const credential of pool.credentials) {
      const others = new Set(pool.credentials.filter((c) => c !== credential).map((c) => c.id));
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
          request = await credential.apply({ url: placed.url, headers: placed.headers });
        } catch (err) {
          if (err instanceof OAuth2RefusedError) await pool.quarantine(credential, 'token endpoint refused the client');
          probes.push({ credential: credential.label, verdict: err instanceof OAuth2RefusedError ? 'rejected' : 'error', status: null, detail: scrubSecrets((err as Error).message, pool.secrets()) });
          continue;
        }
        const res = await fetchId(http, { ...request, body: placed.body, maxBodyBytes: ctx.config.request.maxBodyBytes, credential });
        const decision = await pool.answer(credential, request, res, newRetryState(), got.seq);
        probes.push(describe(credential.label, res.status, res.headers ?? {}, res.errorCode, decision));
      } finally {
        await pool.endRequest(credential, got.lease);
      }
    }
    if (flags.json) process.stdout.write(`${JSON.stringify({ probeId: flags.id ?? PROBE_ID, credentials: probes })}\n`);
    else {
      const width = Math.max(10, ...probes.map((p) => p.credential.length));
      process.stdout.write(`${probes.map((p) => `${p.credential.padEnd(width)}  ${p.verdict.padEnd(9)}  ${p.detail}`).join('\n')}\n`);
    }
    return probes.every((p) => p.verdict === 'valid') ? 0 : 2;
  } finally {
    await ctx.close();
  }
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
