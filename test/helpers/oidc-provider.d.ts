// oidc-provider 9 ships no type declarations (and @types/oidc-provider is not installed): the part the
// tests use, typed loosely.
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  export type ClientMetadata = Record<string, unknown> & { client_id: string };
  export type Configuration = Record<string, unknown> & {
    clients?: ClientMetadata[];
    findAccount?: (ctx: unknown, sub: string) => unknown;
    issueRefreshToken?: (ctx: unknown, client: { grantTypeAllowed(g: string): boolean }, code: { scopes: Set<string> }) => boolean | Promise<boolean>;
  };

  export interface KoaContext {
    path: string;
    method: string;
    status: number;
    body: unknown;
    oidc?: { params?: Record<string, unknown> };
  }

  interface TokenLike {
    jti: string;
    accountId?: string;
    clientId?: string;
    grantId?: string;
    isExpired: boolean;
    isValid: boolean;
    consumed?: unknown;
    save(): Promise<string>;
    destroy(): Promise<void>;
  }
  interface TokenModel<T> {
    new (payload: Record<string, unknown>): T & TokenLike;
    find(value: string, options?: { ignoreExpiration?: boolean }): Promise<(T & TokenLike) | undefined>;
    revokeByGrantId(grantId: string): Promise<void>;
  }
  interface GrantInstance {
    addOIDCScope(scope: string): void;
    addResourceScope(resource: string, scope: string): void;
    save(): Promise<string>;
    destroy(): Promise<void>;
  }

  export default class Provider {
    constructor(issuer: string, configuration?: Configuration);
    proxy: boolean;
    issuer: string;
    use(mw: (ctx: KoaContext, next: () => Promise<void>) => Promise<void>): void;
    on(event: string, listener: (...args: unknown[]) => void): this;
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
    Client: { find(id: string): Promise<unknown> };
    Grant: { new (payload: { accountId: string; clientId: string }): GrantInstance; find(id: string): Promise<GrantInstance | undefined> };
    RefreshToken: TokenModel<object>;
    AccessToken: TokenModel<object>;
  }
}
