import type { Config } from '../config.js';
import type { Credential } from './credential.js';
import type { KindContext } from './kinds/kind-context.js';
import { createCredential } from './kinds/static-credential.js';
import { oauth2Credentials } from './kinds/oauth2-credential.js';
import { loginCredentials } from './kinds/login-credential.js';
import { oauth1Credentials } from './kinds/oauth1-credential.js';
import { customCredentials } from './kinds/custom-credential.js';

export interface BuildInput extends KindContext {
  config: Config;
}

/** The credentials of a config, one file per kind (src/auth/kinds); auth "none" is one anonymous credential. */
export function buildCredentials(input: BuildInput): Credential[] {
  const { config } = input;
  const auth = config.auth;
  switch (auth.type) {
    case 'none':
      return [{ id: 'anonymous', label: 'anonymous', kind: 'none', source: 'config', budget: undefined, apply: (p) => p, headerNames: [], secrets: [] }];
    case 'header':
      return config.credentials.map((c) => createCredential(c, { type: 'header', header: auth.header, scheme: auth.scheme }, input.key));
    case 'query':
      return config.credentials.map((c) => createCredential(c, { type: 'query', param: auth.param }, input.key));
    case 'basic':
      return config.credentials.map((c) => createCredential(c, { type: 'basic' }, input.key));
    case 'oauth2':
      return oauth2Credentials(auth, config.credentials, input);
    case 'login':
      return loginCredentials(auth, config.credentials, input);
    case 'oauth1':
      return oauth1Credentials(auth, config.credentials, input.key);
    case 'custom':
      return customCredentials(auth, config.credentials, input.key);
  }
}
