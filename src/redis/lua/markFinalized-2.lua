--[[
  Marks a run's output as written, only while the caller holds the run's
  finalize lock: a finalizer whose lock expired (a long finalize, a paused
  process) cannot declare its output final over another's. Idempotent.

  Input:
    KEYS[1] finalize lock key
    KEYS[2] run meta hash
    ARGV[1] owner of the lock
    ARGV[2] finishedAt, epoch ms

  Output:
    1 marked (or already marked by this caller), 0 the caller lost the lock
]]
if redis.call("GET", KEYS[1]) ~= ARGV[1] then
  return 0
end
if redis.call("HGET", KEYS[2], "finalized") ~= "1" then
  redis.call("HSET", KEYS[2], "finalized", "1", "finishedAt", ARGV[2])
end
return 1
