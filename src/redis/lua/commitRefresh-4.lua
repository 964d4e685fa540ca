--[[
  Stores a refresh's answer in one step: the sealed access token for the
  fleet and, when the server rotated it, the new sealed refresh token in place
  of the one sent, and resolves the in-flight mark (beginRefresh-4.lua).
  Fenced by the refresh lock's owner: a replica whose lock expired overwrites
  nothing once another replica holds the lock or has begun a refresh (the
  in-flight mark names its owner). The refresh token is replaced
  only while it is still the one sent (a `pullq login` meanwhile wins).
  Idempotent: a replay writes the same values again.

  Input:
    KEYS[1] refresh lock
    KEYS[2] sealed access token cache (queueKeys.oauth)
    KEYS[3] sealed refresh token
    KEYS[4] refresh state hash
    ARGV[1] lock owner
    ARGV[2] the sealed refresh token sent
    ARGV[3] the new sealed refresh token ('' the server did not rotate it)
    ARGV[4] sealed access token
    ARGV[5] its time to live, ms

  Output:
    2 stored and rotated, 1 stored (no rotation, or the refresh token changed meanwhile;
    a replay), 0 fenced out
]]
-- Fenced: the caller holds the lock, or its lock expired with no other holder and the in-flight mark is
-- still its own (no other replica began a refresh since).
local lock = redis.call("GET", KEYS[1])
if lock ~= ARGV[1] and not (lock == false and redis.call("HGET", KEYS[4], "owner") == ARGV[1]) then
  return 0
end
redis.call("SET", KEYS[2], ARGV[4], "PX", ARGV[5])
local rotated = 1
if ARGV[3] ~= "" and (redis.call("GET", KEYS[3]) or "") == ARGV[2] then
  redis.call("SET", KEYS[3], ARGV[3])
  rotated = 2
end
if redis.call("HGET", KEYS[4], "inflight") == ARGV[2] then
  redis.call("HDEL", KEYS[4], "inflight", "tries", "owner")
end
return rotated
