--[[
  Marks the end of a run's IDs: closes the open batch (if it holds any ID) and
  sets `sealed`, after which the run's total is final.

  Input:
    KEYS[1] run meta hash
    KEYS[2] pending-jobs set
    KEYS[3] run ops hash: a replayed call (ioredis resends a command whose reply
            a dropped connection lost) answers the batch the first call closed

    ARGV[1] now, epoch ms (for `sealedAt`)
    ARGV[2] operation id, unique per call
    ARGV[3] the position the producer numbered its IDs up to, or "" (it added none): a run whose
            `pos` is short of it lost a chunk Redis had acknowledged, and is not sealed

  Output:
    {done, closedBatch?}
    done: 1 when every ID already has an outcome (e.g. an empty run), else 0
    {-1} the run's `pos` is short of ARGV[3]: IDs the producer sent are not in the run
]]
local rcall = redis.call
local meta, pendingJobs, ops = KEYS[1], KEYS[2], KEYS[3]
local result = {0}

local prior = rcall("HGET", ops, ARGV[2])
if prior then
  if prior ~= "" then result[2] = tonumber(prior) end
elseif rcall("HGET", meta, "sealed") ~= "1" then
  if ARGV[3] ~= "" and tonumber(rcall("HGET", meta, "pos") or "0") < tonumber(ARGV[3]) then
    return {-1}
  end
  local open = tonumber(rcall("HGET", meta, "open") or "0")
  local openCount = tonumber(rcall("HGET", meta, "openCount") or "0")
  if openCount > 0 then
    rcall("SADD", pendingJobs, open)
    result[2] = open
    rcall("HSET", meta, "open", open + 1, "openCount", 0)
  end
  rcall("HSET", meta, "sealed", "1", "sealedAt", ARGV[1])
  rcall("HSET", ops, ARGV[2], result[2] or "")
end

local total = tonumber(rcall("HGET", meta, "total") or "0")
local finished = tonumber(rcall("HGET", meta, "succeeded") or "0") + tonumber(rcall("HGET", meta, "failed") or "0")
if finished >= total then
  result[1] = 1
end
return result
