--[[
  Extends a lock only while the caller still holds it (compare, then PEXPIRE).
  Idempotent: a replay extends again, which is harmless.

  Input:
    KEYS[1] lock key
    ARGV[1] owner (the value the caller set)
    ARGV[2] new time to live, ms

  Output:
    1 extended, 0 the lock is gone or someone else's
]]
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0
