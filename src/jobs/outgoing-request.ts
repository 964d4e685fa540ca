import type { Got } from 'got';
import type { OutgoingRequest } from '../auth/credential.js';
import type { RenderedRequest } from '../ids/request-template.js';

/**
 * The whole request an ID's try sends, before its credential goes on: the client's method and fixed
 * headers, the templated headers over them, the body and its content type. A signer (oauth1, custom)
 * signs exactly this; fetchId sends what the credential returns.
 */
export function outgoingRequest(client: Got, rendered: RenderedRequest): OutgoingRequest {
  const defaults = client.defaults.options;
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(defaults.headers)) if (typeof v === 'string') headers[k] = v;
  Object.assign(headers, rendered.headers);
  if (rendered.body !== undefined && headers['content-type'] === undefined) headers['content-type'] = 'application/json';
  const request: OutgoingRequest = { method: defaults.method, url: rendered.url, headers };
  if (rendered.body !== undefined) request.body = rendered.body;
  return request;
}
