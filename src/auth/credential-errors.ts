import { PullqError } from '../errors.js';

/**
 * A credential's issuer refused it for good (a token endpoint's 400/401/403, a login's wrong password,
 * an `invalid_grant`): the credential is quarantined with `reason` as its one line; the others carry on.
 */
export class CredentialRefusedError extends PullqError {
  /** The quarantine line's reason: short, secret-free, saying what to do. */
  readonly reason: string;
  constructor(code: string, message: string, reason: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.reason = reason;
  }
}

/** Getting a credential's token failed in a way that may pass (5xx, 429, network): try again later. */
export class CredentialUnavailableError extends PullqError {}

/** The token endpoint refused the client (400/401/403): the client is quarantined. */
export class OAuth2RefusedError extends CredentialRefusedError {
  constructor(message: string, reason = 'token endpoint refused the client') {
    super('oauth2_refused', message, reason);
  }
}

/** The token endpoint failed in a way that may pass (5xx, network): retry later. */
export class OAuth2UnavailableError extends CredentialUnavailableError {
  constructor(message: string) {
    super('oauth2_unavailable', message);
  }
}
