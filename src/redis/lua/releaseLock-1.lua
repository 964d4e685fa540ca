--[[
  Releases a lock only while the caller still holds it (compare, then DEL):
  a holder whose lock expired never deletes the next holder's lock.
  Idempotent: a replay finds the lock gone.

  Input:
    KEYS[1] lock key
    ARGV[1] owner

  Output:
    1 released, 0 not held by the caller
]]
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0
