import type { Got, NormalizedOptions } from 'got';
import type { Credential } from '../auth/credential.js';
import { stripCredentialOffOrigin } from './strip-credential-off-origin.js';
import type { Exchange } from '../policy/decide.js';
import { RedirectRefusedError } from '../errors.js';

export interface FetchRequest {
  /** The method when not the client's (a credential's signer may set it). */
  method?: string;
  url: string;
  headers: Record<string, string>;
  /** The body text (request.body's JSON, or what a signer made of it). */
  body?: string;
  maxBodyBytes: number;
  /** The credential on the request, so a cross-origin redirect can take it off. */
  credential?: Credential;
  /**
   * A reserved start (epoch ms): checked right before the request goes on the
   * wire, after got's own set-up, and the request is dropped (`late`) if it
   * missed the start by more than `lateMs`.
   */
  startAt?: number;
  lateMs?: number;
}

export interface FetchResult extends Exchange {
  body?: Buffer;
  contentType?: string;
  /** Not sent: it would have started too long after its reserved start. */
  late?: boolean;
}

class LateStart extends Error {}

/**
 * The request's headers exactly: the client's fixed headers it does not carry (a signer removed them) are
 * set to undefined, which got leaves off, instead of merging them back.
 */
function exactHeaders(client: Got, headers: Record<string, string>): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const name of Object.keys(client.defaults.options.headers)) if (!(name in headers)) out[name] = undefined;
  return Object.assign(out, headers);
}

/**
 * One HTTP exchange. Never throws: failures come back as `errorCode`, and the
 * got error (which carries request headers) is dropped here, never logged.
 */
export async function fetchId(client: Got, req: FetchRequest): Promise<FetchResult> {
  const origin = new URL(req.url).origin;
  let tooLarge = false;
  // req is the credential's whole request (outgoingRequest, then apply): its URL, method, headers and body are sent as they are.
  const headers = exactHeaders(client, req.headers);
  const request = client(req.url, {
    headers,
    ...(req.method !== undefined ? { method: req.method as 'GET' } : {}),
    ...(req.body !== undefined ? { body: req.body } : {}),
    hooks: {
      beforeRedirect: [(options: NormalizedOptions) => stripCredentialOffOrigin(options, origin, req.credential)],
      beforeRequest: [
        () => {
          if (req.startAt !== undefined && Date.now() - req.startAt > (req.lateMs ?? Infinity)) throw new LateStart();
        },
      ],
    },
  });
  request.on('response', (res: { headers: Record<string, string | string[] | undefined> }) => {
    const length = Number(res.headers['content-length']);
    if (Number.isFinite(length) && length > req.maxBodyBytes) {
      tooLarge = true;
      request.cancel();
    }
  });
  request.on('downloadProgress', ({ transferred }: { transferred: number }) => {
    if (transferred > req.maxBodyBytes && !tooLarge) {
      tooLarge = true;
      request.cancel();
    }
  });
  try {
    const res = await request;
    return { status: res.statusCode, headers: res.headers, body: res.rawBody, contentType: res.headers['content-type'] };
  } catch (err) {
    if (tooLarge) return { status: null, tooLarge: true };
    if (err instanceof LateStart || (err as { cause?: unknown }).cause instanceof LateStart) return { status: null, late: true };
    const refused = err instanceof RedirectRefusedError ? err : (err as { cause?: unknown }).cause;
    if (refused instanceof RedirectRefusedError) return { status: refused.status, refusedRedirect: refused.message };
    const e = err as { code?: string; response?: { statusCode: number; headers: Record<string, string | string[] | undefined> } };
    return { status: null, errorCode: e.code ?? 'ERR_UNKNOWN' };
  }
}
