--[[
  Marks the end of a run's IDs: closes the open batch (if it holds any ID) and
  sets `sealed`, after which the run's total is final.

  Input:
    KEYS[1] run meta hash
    KEYS[2] pending-jobs set

    ARGV[1] now, epoch ms (for `sealedAt`)

  Output:
    {done, closedBatch?}
    done: 1 when every ID already has an outcome (e.g. an empty run), else 0
]]
local rcall = redis.call
local meta, pendingJobs = KEYS[1], KEYS[2]
local result = {0}

if rcall("HGET", meta, "sealed") ~= "1" then
  local open = tonumber(rcall("HGET", meta, "open") or "0")
  local openCount = tonumber(rcall("HGET", meta, "openCount") or "0")
  if openCount > 0 then
    rcall("SADD", pendingJobs, open)
    result[2] = open
    rcall("HSET", meta, "open", open + 1, "openCount", 0)
  end
  rcall("HSET", meta, "sealed", "1", "sealedAt", ARGV[1])
end

local total = tonumber(rcall("HGET", meta, "total") or "0")
local finished = tonumber(rcall("HGET", meta, "succeeded") or "0") + tonumber(rcall("HGET", meta, "failed") or "0")
if finished >= total then
  result[1] = 1
end
return result
