/**
 * Replaces every occurrence of a known secret (and its URL-encoded form) with
 * "[redacted]". Messages are built without secrets; this is the second net.
 */
export function scrubSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) {
    if (s.length < 4) continue;
    for (const form of new Set([s, encodeURIComponent(s)])) out = out.split(form).join('[redacted]');
  }
  return out;
}
