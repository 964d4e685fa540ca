--[[
  Resolves a refresh that stored no token (beginRefresh-4.lua's mark): the
  server answered with an error, or the request was never sent. With a reason,
  the refresh token sent is marked refused (invalid_grant, invalid_client): no
  replica sends it again until another refresh token is stored (`pullq login`,
  a new one in the config).
  Fenced by the refresh lock's owner, as commitRefresh-4.lua. Idempotent: a replay writes the same.

  Input:
    KEYS[1] refresh lock
    KEYS[2] sealed refresh token
    KEYS[3] refresh state hash
    ARGV[1] lock owner
    ARGV[2] the sealed refresh token sent
    ARGV[3] refusal reason ('' the token is not refused: only clear the mark)

  Output:
    1 resolved, 0 fenced out
]]
-- Fenced: the caller holds the lock, or its lock expired with no other holder and the in-flight mark is
-- still its own (no other replica began a refresh since).
local lock = redis.call("GET", KEYS[1])
if lock ~= ARGV[1] and not (lock == false and redis.call("HGET", KEYS[3], "owner") == ARGV[1]) then
  return 0
end
if ARGV[3] ~= "" and (redis.call("GET", KEYS[2]) or "") == ARGV[2] then
  redis.call("HSET", KEYS[3], "dead", ARGV[2], "deadReason", ARGV[3])
end
if redis.call("HGET", KEYS[3], "inflight") == ARGV[2] then
  redis.call("HDEL", KEYS[3], "inflight", "tries", "owner")
end
return 1
