--[[
  Creates a run, or finds the one to resume. A replayed call (ioredis resends a
  command whose reply a dropped connection lost) answers what the first call
  answered, so a producer never takes its own new run for an old one.

  Input:
    KEYS[1] run meta hash
    KEYS[2] the queue's runs zset (run name scored by creation time)
    KEYS[3] run ops hash

    ARGV[1] operation id, unique per call
    ARGV[2] now, epoch ms
    ARGV[3] run name
    ARGV[4] source (file name or "stdin")
    ARGV[5] dedupe bucket bits
    ARGV[6] batch size

  Output:
    {created, sealed}   created: 1 when this call created the run; sealed: 1 when all its IDs are in
]]
local rcall = redis.call
local meta, runs, ops = KEYS[1], KEYS[2], KEYS[3]

local prior = rcall("HGET", ops, ARGV[1])
if prior == "created" then
  return {1, rcall("HGET", meta, "sealed") == "1" and 1 or 0}
end
if rcall("HSETNX", meta, "createdAt", ARGV[2]) == 1 then
  rcall("HSET", meta, "source", ARGV[4], "seenBits", ARGV[5], "batchSize", ARGV[6])
  rcall("ZADD", runs, ARGV[2], ARGV[3])
  rcall("HSET", ops, ARGV[1], "created")
  return {1, 0}
end
return {0, rcall("HGET", meta, "sealed") == "1" and 1 or 0}
