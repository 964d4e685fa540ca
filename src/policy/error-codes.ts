/**
 * The SPEC's stable per-ID error codes, as written to failed.jsonl;
 * `cross_origin_next`: a next-page link pointed at another origin (never followed, issue #13).
 */
export const ERROR_CODES = [
  'not_found', 'forbidden', 'unauthorized', 'client_error', 'server_error',
  'timeout', 'network', 'invalid_json', 'body_too_large', 'invalid_id', 'cross_origin_next',
  // A library user's transform hook threw for the ID's answer (createPullq's `transform`).
  'transform_failed',
  // A redirect request.redirects does not allow: another origin at a non-public address, or https → http.
  'redirect_refused',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];
