import type { Config } from '../config.js';
import { ConfigError } from '../errors.js';
import { createCredential, type Credential } from './credential.js';

/**
 * The credentials one worker process draws from. Issue #2: round-robin;
 * `exclude` lets a caller skip credentials an ID already tried (401/403).
 */
export class CredentialPool {
  readonly credentials: readonly Credential[];
  private cursor = 0;

  constructor(credentials: readonly Credential[]) {
    this.credentials = credentials;
  }

  static fromConfig(config: Config): CredentialPool {
    const auth = config.auth;
    if (auth.type === 'none') return new CredentialPool([]);
    if (auth.type === 'oauth2') throw new Error('oauth2 pools are not built by CredentialPool.fromConfig');
    const shape = auth.type === 'header' ? { type: auth.type, header: auth.header, scheme: auth.scheme } : auth.type === 'query' ? { type: auth.type, param: auth.param } : { type: auth.type };
    const creds = config.credentials.map((c) => createCredential(c, shape));
    const seen = new Set<string>();
    for (const c of creds) {
      if (seen.has(c.id)) throw new ConfigError(`auth: two credentials share the name or fingerprint ${c.id}`);
      seen.add(c.id);
    }
    return new CredentialPool(creds);
  }

  get size(): number {
    return this.credentials.length;
  }

  /** The next credential in turn that is not excluded; undefined when the pool is empty or all are excluded. */
  next(exclude?: ReadonlySet<string>): Credential | undefined {
    const n = this.credentials.length;
    for (let i = 0; i < n; i++) {
      const c = this.credentials[(this.cursor + i) % n]!;
      if (!exclude?.has(c.id)) {
        this.cursor = (this.cursor + i + 1) % n;
        return c;
      }
    }
    return undefined;
  }

  /** Every secret of the pool, for scrubbing text that must never carry one. */
  secrets(): string[] {
    return this.credentials.flatMap((c) => c.secrets);
  }
}
