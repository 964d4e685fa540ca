import type { Got } from 'got';
import type { OutgoingRequest } from '../auth/credential.js';
import type { RenderedRequest } from '../ids/request-template.js';

/**
 * The whole request an ID's try sends, before its credential goes on: the client's method and fixed
 * headers, the templated headers over them, the body and its content type. A signer (oauth1, custom)
 * signs exactly this (its URL already in the form got sends); fetchId sends what the credential returns, and
 * only that: a fixed header or content type the credential removed stays off.
 */
export function outgoingRequest(client: Got, rendered: RenderedRequest): OutgoingRequest {
  const defaults = client.defaults.options;
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(defaults.headers)) if (typeof v === 'string') headers[k] = v;
  Object.assign(headers, rendered.headers);
  if (rendered.body !== undefined && headers['content-type'] === undefined) headers['content-type'] = 'application/json';
  // The URL as got sends it (WHATWG serialization: ' becomes %27 in the query, …), so a signer signs what goes on the wire.
  const request: OutgoingRequest = { method: defaults.method, url: new URL(rendered.url).href, headers };
  if (rendered.body !== undefined) request.body = rendered.body;
  return request;
}
