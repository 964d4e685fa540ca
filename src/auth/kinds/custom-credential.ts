import type { Config, CredentialConfig, CustomSigner } from '../../config.js';
import { CredentialRefusedError, CredentialUnavailableError } from '../credential-errors.js';
import { credentialId, type Credential, type OutgoingRequest } from '../credential.js';
import { scrubSecrets } from '../../policy/scrub-secrets.js';

export type CustomAuth = Extract<Config['auth'], { type: 'custom' }>;

/**
 * A library user's signer threw (or returned something that is not a request): this try fails like a token
 * that could not be had, and is retried with backoff; the credential is not quarantined (a signer's bug or
 * a passing failure says nothing about the credential). A signer that knows its credential is refused for
 * good throws CredentialRefusedError instead: that quarantines it. The message never carries a secret.
 */
export class CustomSignerError extends CredentialUnavailableError {
  constructor(message: string) {
    super('custom_signer_failed', message);
  }
}

/** Every string in a credential object (nested objects and arrays too), but its `name`: all count as secrets. */
function stringsOf(value: unknown, into: string[] = []): string[] {
  if (typeof value === 'string') into.push(value);
  else if (Array.isArray(value)) for (const v of value) stringsOf(v, into);
  else if (value !== null && typeof value === 'object' && !ArrayBuffer.isView(value)) for (const v of Object.values(value)) stringsOf(v, into);
  return into;
}

/**
 * The library's own signers (auth type "custom"): apply hands sign() a copy of the whole request (method, URL,
 * headers, body) and the credential object as configured, and sends what sign returns (or the copy, changed in
 * place, when it returns nothing).
 *
 * Header names the signer adds or changes are learnt call by call (lower case) and are `headerNames`: a
 * cross-origin redirect strips every one of them, so a signature or key never follows a redirect away, whatever
 * header the signer puts it in (a header it only sometimes sets is stripped from then on).
 */
export function customCredentials(auth: CustomAuth, credentials: readonly CredentialConfig[], key: Buffer): Credential[] {
  return credentials.map((c) => {
    const id = credentialId(c, key);
    const label = c.name ?? id;
    const entry = c.entry ?? {};
    const { name: _name, ...rest } = entry as { name?: unknown } & Record<string, unknown>;
    const secrets = [...new Set(stringsOf(rest))].filter((s) => s !== '');
    const headerNames: string[] = [];
    const sign: CustomSigner = auth.sign;
    const failed = (what: string) => new CustomSignerError(`the custom signer ${what} for credential ${label}; the try is retried`);
    return {
      id,
      label,
      kind: 'custom',
      source: c.source ?? 'library',
      budget: c.budget,
      headerNames,
      secrets,
      async apply(p: OutgoingRequest): Promise<OutgoingRequest> {
        const copy: OutgoingRequest = { method: p.method, url: p.url, headers: { ...p.headers } };
        if (p.body !== undefined) copy.body = p.body;
        let returned;
        try {
          returned = await sign(copy, entry);
        } catch (err) {
          if (err instanceof CredentialRefusedError) throw err;
          const message = err instanceof Error ? err.message : String(err);
          throw failed(`threw (${scrubSecrets(message, secrets).split('\n')[0]!.slice(0, 200)})`);
        }
        const r = returned ?? copy;
        if (typeof r !== 'object' || r === null) throw failed('returned neither a request nor nothing');
        const out: OutgoingRequest = { method: r.method ?? copy.method, url: r.url ?? copy.url, headers: {} };
        if (typeof out.method !== 'string' || typeof out.url !== 'string' || !/^https?:\/\//i.test(out.url) || !URL.canParse(out.url)) throw failed('returned no http(s) URL or no method');
        // What got sends (WHATWG serialization): the request returned is the request on the wire.
        out.url = new URL(out.url).href;
        for (const [k, v] of Object.entries(r.headers ?? copy.headers)) {
          if (typeof v !== 'string') throw failed(`set header ${JSON.stringify(k)} to a ${typeof v}, not a string`);
          const name = k.toLowerCase();
          out.headers[name] = v;
          if (p.headers[name] !== v && !headerNames.includes(name)) headerNames.push(name);
        }
        const body = 'body' in r ? r.body : copy.body;
        if (body !== undefined && typeof body !== 'string') throw failed('returned a body that is not a string');
        if (body !== undefined) out.body = body;
        return out;
      },
    } satisfies Credential;
  });
}
