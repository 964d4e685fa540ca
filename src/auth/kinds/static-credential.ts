import type { CredentialConfig } from '../../config.js';
import { appendQuery, credentialId, type Credential, type OutgoingRequest } from '../credential.js';

/** A credential whose request decoration needs no I/O (header, query, basic). */
export interface StaticCredential extends Credential {
  apply(request: OutgoingRequest): OutgoingRequest;
}

export interface AuthShape {
  type: 'header' | 'query' | 'basic';
  header?: string;
  scheme?: string;
  param?: string;
}

/** Builds the request decoration for one configured static credential; `key` names it (fingerprint). */
export function createCredential(c: CredentialConfig, shape: AuthShape, key: Buffer): StaticCredential {
  const id = credentialId(c, key);
  const base = { id, label: c.name ?? id, kind: shape.type, source: c.source ?? 'config', budget: c.budget, secrets: [c.secret] };
  switch (shape.type) {
    case 'header': {
      const header = (shape.header ?? 'Authorization').toLowerCase();
      const value = shape.scheme ? `${shape.scheme} ${c.secret}` : c.secret;
      return { ...base, headerNames: [header], apply: (p) => ({ ...p, headers: { ...p.headers, [header]: value } }) };
    }
    case 'query': {
      const param = shape.param!;
      const pair = `${encodeURIComponent(param)}=${encodeURIComponent(c.secret)}`;
      return { ...base, headerNames: [], queryParam: param, apply: (p) => ({ ...p, url: appendQuery(p.url, pair) }) };
    }
    case 'basic': {
      const value = `Basic ${Buffer.from(`${c.user ?? ''}:${c.secret}`, 'utf8').toString('base64')}`;
      return { ...base, secrets: [c.secret, value.slice(6)], headerNames: ['authorization'], apply: (p) => ({ ...p, headers: { ...p.headers, authorization: value } }) };
    }
  }
}
