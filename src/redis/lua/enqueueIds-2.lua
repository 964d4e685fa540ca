--[[
  Adds a chunk of IDs to a run: drops IDs the run has seen before, appends the
  new ones to the open batch, and closes the batch when it is full. Dedupe and
  batch membership change in one step, so a crashed producer loses nothing:
  re-running `enqueue` on the same run skips what is already in.

  Input:
    KEYS[1] run meta hash
    KEYS[2] pending-jobs set (batches closed but whose BullMQ job may not exist yet)

    ARGV[1] run key prefix ("pullq:<queue>:run:<run>:")
    ARGV[2] batch size (IDs per batch)
    ARGV[3..] triplets: seen bucket, seen field (hash of the ID), ID

  Output:
    {newIds, closedBatch1, closedBatch2, ...}
    -1 the run is sealed: enqueue is over for it
]]
local rcall = redis.call
local meta, pendingJobs = KEYS[1], KEYS[2]
local prefix = ARGV[1]
local batchSize = tonumber(ARGV[2])

if rcall("HGET", meta, "sealed") == "1" then
  return -1
end

local open = tonumber(rcall("HGET", meta, "open") or "0")
local openCount = tonumber(rcall("HGET", meta, "openCount") or "0")
local added = 0
local result = {0}

for i = 3, #ARGV, 3 do
  if rcall("HSETNX", prefix .. "s:" .. ARGV[i], ARGV[i + 1], "") == 1 then
    rcall("RPUSH", prefix .. "b:" .. open, ARGV[i + 2])
    added = added + 1
    openCount = openCount + 1
    if openCount >= batchSize then
      rcall("SADD", pendingJobs, open)
      result[#result + 1] = open
      open = open + 1
      openCount = 0
    end
  end
end

rcall("HSET", meta, "open", open, "openCount", openCount)
rcall("HINCRBY", meta, "total", added)
result[1] = added
return result
