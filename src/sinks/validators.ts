// What a sink keeps for conditional re-pulls (request.conditional): each ID's
// validators from a complete run, and (output.carryUnchanged) its data.

/** An ID's validators as an API sent them (RFC 9110 §8.8): an ETag, a Last-Modified date, or both. */
export interface Validators {
  etag?: string;
  lastModified?: string;
}

/** One ID's validators, as a worker hands them to the sink with a part, and as the sink gives them back. */
export interface ValidatorEntry extends Validators {
  id: string;
  /** The data of the ID's results line (output.carryUnchanged only): written again when the next run gets a 304. */
  data?: unknown;
  /** Whether `data` was kept (`data` itself may be null). */
  hasData?: boolean;
}

/** The validators of a 2xx answer, or undefined when it carries none. */
export function validatorsOf(headers: Record<string, string | string[] | undefined> | undefined): Validators | undefined {
  const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v)?.trim() || undefined;
  const etag = one(headers?.['etag']);
  const lastModified = one(headers?.['last-modified']);
  if (etag === undefined && lastModified === undefined) return undefined;
  return { ...(etag !== undefined ? { etag } : {}), ...(lastModified !== undefined ? { lastModified } : {}) };
}

/** The request headers that make a request conditional (RFC 9110 §13.1.2, §13.1.3); If-None-Match wins when both are known. */
export function conditionalHeaders(v: Validators): Record<string, string> {
  const headers: Record<string, string> = {};
  if (v.etag !== undefined) headers['if-none-match'] = v.etag;
  if (v.lastModified !== undefined) headers['if-modified-since'] = v.lastModified;
  return headers;
}
