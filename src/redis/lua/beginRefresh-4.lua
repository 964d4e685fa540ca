--[[
  Marks, before the token request is sent, which refresh token is in flight
  (grants refresh_token, authorization_code), so a later refresh that finds
  the mark unresolved knows the answer was lost (a cut connection, a time-out,
  the replica killed mid-refresh). Fenced: only while the caller holds the
  refresh lock and the stored refresh token is still the one it read.
  Optionally adopts a new starting refresh token first (grant refresh_token:
  the config names one the fleet has not started from yet): that clears the
  old token's refusal and lifts the client's quarantine (qUntil, qReason and
  the 401 count in its credential hash), as `pullq login` does for
  authorization_code (RefreshTokenStore.write).
  Idempotent: a replay writes the same fields again (and finds the adopted
  token already stored).

  Input:
    KEYS[1] refresh lock (queueKeys.oauthLock)
    KEYS[2] sealed refresh token (queueKeys.refreshToken)
    KEYS[3] refresh state hash (queueKeys.refreshState)
    KEYS[4] the client's credential hash (queueKeys.cred)
    ARGV[1] lock owner
    ARGV[2] the sealed refresh token the caller read ('' none)
    ARGV[3] sealed refresh token to adopt first ('' keep the stored one)
    ARGV[4] seed of the adopted token ('' none)
    ARGV[5] attempt of this refresh token (1, or 2 after a lost answer)

  Output:
    1 marked, 0 the lock is not the caller's, -1 the stored refresh token changed meanwhile
]]
if redis.call("GET", KEYS[1]) ~= ARGV[1] then
  return 0
end
local current = redis.call("GET", KEYS[2]) or ""
-- A replay after the adoption finds the adopted token stored: the same outcome.
if current ~= ARGV[2] and not (ARGV[3] ~= "" and current == ARGV[3]) then
  return -1
end
local sent = current
if ARGV[3] ~= "" then
  redis.call("SET", KEYS[2], ARGV[3])
  redis.call("HDEL", KEYS[3], "dead", "deadReason")
  redis.call("HSET", KEYS[3], "seed", ARGV[4])
  redis.call("HDEL", KEYS[4], "qUntil", "qReason", "u401")
  sent = ARGV[3]
end
redis.call("HSET", KEYS[3], "inflight", sent, "tries", ARGV[5], "owner", ARGV[1])
return 1
