import dns, { type LookupAddress } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import type { BeforeRedirectHook, NormalizedOptions } from 'got';
import { RedirectRefusedError } from '../errors.js';
import { methodAfterRedirect } from '../policy/method-after-redirect.js';
import { needsAddressCheck, redirectRefusal, type RedirectHop, type RedirectRules } from '../policy/redirect-refusal.js';

/** Headers that describe a body: dropped with it when a redirect turns the request into a GET. */
const CONTENT_HEADERS = ['content-type', 'content-length', 'content-encoding', 'content-language'];

/** The lookup a guarded one wraps, so a later hop guards the original, not a guard. */
const WRAPPED = Symbol('pullq.wrappedLookup');
type Lookup = LookupFunction & { [WRAPPED]?: LookupFunction };

/**
 * got's beforeRedirect hook for request.redirects: sets the method and body the next request
 * carries (src/policy/method-after-redirect.ts), and refuses a hop src/policy/redirect-refusal.ts
 * refuses, with a RedirectRefusedError, before anything is sent there. Another origin's host is
 * looked up here, and the connection to it is made through a lookup that refuses again, so a
 * name that answers differently the second time (DNS rebinding) cannot reach a private address.
 * It runs only on a redirect: a request without one does not pay for it.
 */
export function redirectGuard(rules: RedirectRules): BeforeRedirectHook {
  return async (options, response) => {
    rewriteMethod(options, response.request.options.method, response.statusCode);
    const to = options.url instanceof URL ? options.url : new URL(String(options.url));
    const hop: RedirectHop = { request: response.requestUrl, from: new URL(response.url), to };
    const refused = redirectRefusal(hop, rules);
    if (refused !== undefined) throw new RedirectRefusedError(refused, response.statusCode);
    const current = options.dnsLookup as Lookup | undefined;
    const base: LookupFunction = current?.[WRAPPED] ?? current ?? dns.lookup;
    if (!needsAddressCheck(hop, rules)) {
      // Back to the request's own origin (or private targets allowed): the lookup as it was before any guard.
      if (current?.[WRAPPED]) options.dnsLookup = current[WRAPPED];
      return;
    }
    const host = to.hostname.replace(/^\[(.*)\]$/, '$1');
    const addresses = isIP(host) ? [host] : await lookupAll(base, host);
    const inner = redirectRefusal({ ...hop, addresses }, rules);
    if (inner !== undefined) throw new RedirectRefusedError(inner, response.statusCode);
    // An IP literal is connected to as it is, without a lookup.
    if (!isIP(host)) options.dnsLookup = guardedLookup(base, hop, rules, response.statusCode);
  };
}

/** 303, or 301/302 after a POST: a GET without the body or its content headers (RFC 9110 §15.4). */
function rewriteMethod(options: NormalizedOptions, before: string, status: number): void {
  const after = methodAfterRedirect(before, status);
  if (after === before.toUpperCase()) return;
  options.body = undefined;
  options.method = after as NormalizedOptions['method'];
  for (const key of Object.keys(options.headers)) {
    if (CONTENT_HEADERS.includes(key.toLowerCase())) delete options.headers[key];
  }
}

/** Every address a host name resolves to, as a connection would see them. */
function lookupAll(lookup: LookupFunction, host: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    lookup(host, { all: true }, (err: NodeJS.ErrnoException | null, address: string | LookupAddress[]) => {
      if (err) reject(err);
      else resolve(Array.isArray(address) ? address.map((a) => a.address) : [address]);
    });
  });
}

/** `lookup`, refusing the connection when the name now resolves to an address the hop may not reach. */
function guardedLookup(lookup: LookupFunction, hop: RedirectHop, rules: RedirectRules, status: number): Lookup {
  const guarded: Lookup = (hostname, options, callback) => {
    lookup(hostname, options, (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => {
      if (err) return callback(err, address as string, family);
      const addresses = Array.isArray(address) ? address.map((a) => a.address) : [address];
      const refused = redirectRefusal({ ...hop, addresses }, rules);
      if (refused !== undefined) return callback(new RedirectRefusedError(refused, status) as unknown as NodeJS.ErrnoException, '', 0);
      callback(null, address as string, family);
    });
  };
  guarded[WRAPPED] = lookup;
  return guarded;
}
