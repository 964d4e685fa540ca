import { isPublicAddress } from './is-public-address.js';

/** `request.redirects` as far as refusing a hop goes. */
export interface RedirectRules {
  /** Follow a redirect to another origin whose address is loopback, private, link-local, … */
  allowPrivate: boolean;
  /** Follow a redirect from https to http. */
  allowDowngrade: boolean;
}

/** One hop of a redirect chain. */
export interface RedirectHop {
  /** The URL the request was made for: its origin may be private (an internal API) and stays reachable. */
  request: URL;
  /** The URL that answered with the redirect. */
  from: URL;
  /** Where the redirect points. */
  to: URL;
  /** What `to`'s host resolved to (undefined: not resolved yet, only the URL is judged). */
  addresses?: readonly string[];
}

/** Whether a hop must have its target's addresses looked at: another origin than the request's, with private targets not allowed. */
export function needsAddressCheck(hop: Pick<RedirectHop, 'request' | 'to'>, rules: RedirectRules): boolean {
  return !rules.allowPrivate && hop.to.origin !== hop.request.origin;
}

/**
 * Why a redirect hop must not be followed (a message naming origins only, never a path, query
 * or user info, and the key that allows it), or undefined to follow it. Refused by default:
 * https → http, and another origin than the request's at a non-public address (any of them).
 */
export function redirectRefusal(hop: RedirectHop, rules: RedirectRules): string | undefined {
  if (!rules.allowDowngrade && hop.from.protocol === 'https:' && hop.to.protocol === 'http:') {
    return `redirect from ${hop.from.origin} to ${hop.to.origin} refused: it leaves HTTPS; set request.redirects.allowDowngrade: true to follow it`;
  }
  if (hop.addresses === undefined || !needsAddressCheck(hop, rules)) return undefined;
  const inner = hop.addresses.find((a) => !isPublicAddress(a));
  if (inner === undefined) return undefined;
  return `redirect to ${hop.to.origin} refused: another origin at a non-public address (${inner}); set request.redirects.allowPrivate: true to follow it`;
}
