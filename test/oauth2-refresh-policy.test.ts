import { describe, expect, it } from 'vitest';
import { classifyFailure, newestRotation, planRefresh, refusalReason, type HintedClient, type RefreshSituation } from '../src/auth/kinds/oauth2-refresh-policy.js';

const base: RefreshSituation = { grant: 'authorization_code', label: 'crm', index: 0, stored: true, opened: true, newConfigToken: false, refused: false, inFlight: false, tries: 0 };

describe('planRefresh: which refresh token a refresh sends, or why none', () => {
  it.each<[string, Partial<RefreshSituation>, ReturnType<typeof planRefresh>]>([
    ['a stored token, nothing pending', {}, { kind: 'send', token: 'stored', tries: 1, afterLostAnswer: false }],
    ['authorization_code, nothing stored yet', { stored: false, opened: false }, { kind: 'refuse', reason: 'no refresh token yet: run pullq login --client crm' }],
    ['refresh_token, a config token the fleet has not adopted', { grant: 'refresh_token', newConfigToken: true, stored: false, opened: false }, { kind: 'send', token: 'config', tries: 1, afterLostAnswer: false }],
    ['refresh_token, a new config token beats a refused stored one', { grant: 'refresh_token', newConfigToken: true, refused: true }, { kind: 'send', token: 'config', tries: 1, afterLostAnswer: false }],
    ['refresh_token, the adopted lineage gone from Redis', { grant: 'refresh_token', stored: false, opened: false }, { kind: 'refuse', reason: "the fleet's refresh token is gone from Redis: put a new auth.clients[0].refreshToken in the config and restart" }],
    ['sealed under another key', { opened: false }, { kind: 'refuse', reason: 'the stored refresh token was sealed under another key (clientSecret or auth.sealKey changed): run pullq login --client crm' }],
    ['refused before: never sent again', { refused: true, refusedReason: 'refresh token refused (invalid_grant): run pullq login --client crm' }, { kind: 'refuse', reason: 'refresh token refused (invalid_grant): run pullq login --client crm' }],
    ['an answer lost once: the same token once more', { inFlight: true, tries: 1 }, { kind: 'send', token: 'stored', tries: 2, afterLostAnswer: true }],
    ['refresh_token, refused before: the line names the config key', { grant: 'refresh_token', index: 2, refused: true }, { kind: 'refuse', reason: 'refresh token refused: put a new auth.clients[2].refreshToken in the config and restart' }],
    ['lost twice: no third send', { inFlight: true, tries: 2 }, { kind: 'refuse', reason: 'two token-endpoint answers lost in a row; the refresh token may have been rotated: run pullq login --client crm' }],
  ])('%s', (_, s, want) => {
    expect(planRefresh({ ...base, ...s })).toEqual(want);
  });
});

describe('classifyFailure: what a failed token request means for the refresh token sent', () => {
  it.each<[string, Parameters<typeof classifyFailure>[0], ReturnType<typeof classifyFailure>['kind']]>([
    ['400 invalid_grant', { status: 400, oauthError: 'invalid_grant' }, 'refused'],
    ['401 invalid_client', { status: 401, oauthError: 'invalid_client' }, 'refused'],
    ['401 with a challenge only', { status: 401 }, 'refused'],
    ['400 unauthorized_client', { status: 400, oauthError: 'unauthorized_client' }, 'refused'],
    ['400 invalid_scope: never passes', { status: 400, oauthError: 'invalid_scope' }, 'refused'],
    ['400 unsupported_grant_type: never passes', { status: 400, oauthError: 'unsupported_grant_type' }, 'refused'],
    ['400 invalid_request: nothing rotated', { status: 400, oauthError: 'invalid_request' }, 'error-answer'],
    ['503 temporarily_unavailable', { status: 503, oauthError: 'temporarily_unavailable' }, 'error-answer'],
    ['500 without a body', { status: 500 }, 'error-answer'],
    ['429', { status: 429 }, 'error-answer'],
    ['200 whose body could not be read or used', { status: 200, name: 'TypeError', code: 'UND_ERR_SOCKET' }, 'lost'],
    ['connection refused', { name: 'TypeError', code: 'ECONNREFUSED' }, 'not-sent'],
    ['DNS failure', { name: 'TypeError', code: 'ENOTFOUND' }, 'not-sent'],
    ['connect time-out', { name: 'TypeError', code: 'UND_ERR_CONNECT_TIMEOUT' }, 'not-sent'],
    ['reset after sending', { name: 'TypeError', code: 'ECONNRESET' }, 'lost'],
    ['socket closed before the answer', { name: 'TypeError', code: 'UND_ERR_SOCKET' }, 'lost'],
    ['time-out waiting for the answer', { name: 'TimeoutError' }, 'lost'],
    ['an unknown error', { name: 'Error' }, 'lost'],
  ])('%s', (_, facts, kind) => {
    expect(classifyFailure(facts).kind).toBe(kind);
  });
});

describe('refusalReason: the quarantine line says what brings the client back, per grant', () => {
  it.each<[HintedClient['grant'], string, boolean, string]>([
    ['authorization_code', 'invalid_grant', false, 'refresh token refused (invalid_grant): run pullq login --client crm'],
    ['authorization_code', 'invalid_grant', true, 'refresh token refused (invalid_grant) after a lost token-endpoint answer (the server had rotated it): run pullq login --client crm'],
    ['authorization_code', 'invalid_client', false, 'token endpoint refused the client (invalid_client): run pullq login --client crm'],
    ['refresh_token', 'invalid_grant', false, 'refresh token refused (invalid_grant): put a new auth.clients[1].refreshToken in the config and restart'],
    ['refresh_token', 'invalid_scope', false, 'token endpoint refused the scope (invalid_scope): check auth.scope, then restart'],
    ['authorization_code', 'invalid_scope', false, 'token endpoint refused the scope (invalid_scope): check auth.scope, then restart'],
    ['refresh_token', 'unauthorized_client', false, 'token endpoint refused the client (unauthorized_client): the server does not let this client use grant refresh_token; check its settings at the server, then restart'],
    ['refresh_token', 'unsupported_grant_type', false, 'token endpoint refused the grant (unsupported_grant_type): it does not support grant refresh_token; check auth.tokenUrl and auth.grant, then restart'],
    ['refresh_token', 'invalid_grant', true, 'refresh token refused (invalid_grant) after a lost token-endpoint answer (the server had rotated it): put a new auth.clients[1].refreshToken in the config and restart'],
  ])('%s %s (after a lost answer: %s)', (grant, error, lost, want) => {
    expect(refusalReason({ grant, label: 'crm', index: 1 }, error, lost)).toBe(want);
  });
});

describe('newestRotation: the newest refresh token this process got for the one about to be sent', () => {
  it.each<[string, [string, string][], string, string]>([
    ['never rotated: itself', [], 'a', 'a'],
    ['one rotation lost', [['a', 'b']], 'a', 'b'],
    ['two rotations lost: the chain followed to its end', [['a', 'b'], ['b', 'c']], 'a', 'c'],
    ['the newest already: itself', [['a', 'b'], ['b', 'c']], 'c', 'c'],
    ['a cycle stops at the first token seen twice', [['a', 'b'], ['b', 'a']], 'a', 'b'],
  ])('%s', (_, entries, token, want) => {
    expect(newestRotation(new Map(entries), token)).toBe(want);
  });
});
