--[[
  Stores a value only while the caller still holds a lock (compare, then SET PX):
  a holder whose lock expired (another replica took it and stored its own value)
  never overwrites that replica's value with its late one.
  Idempotent: a replay stores the same value again, or nothing.

  Input:
    KEYS[1] lock key
    KEYS[2] key to store
    ARGV[1] owner (the value the caller set on the lock)
    ARGV[2] value
    ARGV[3] time to live, ms

  Output:
    1 stored, 0 the lock is gone or someone else's (nothing stored)
]]
if redis.call("GET", KEYS[1]) == ARGV[1] then
  redis.call("SET", KEYS[2], ARGV[2], "PX", ARGV[3])
  return 1
end
return 0
