--[[
  Commits one step of a batch job: the part file holding the finished IDs'
  lines becomes part of the run's output, the counters move, and the IDs still
  to retry replace the batch's list. It happens only while the caller still
  holds the BullMQ job lock, so two workers that both ran the batch (a stalled
  job picked up again) can never both commit it: this is the exactly-once point.

  Input:
    KEYS[1] BullMQ job lock key ("bull:<queue>:<jobId>:lock")
    KEYS[2] run meta hash
    KEYS[3] batch list (IDs still to do)
    KEYS[4] batch state hash: "step", and "a:<id>" = retry state of that ID
    KEYS[5] run parts list (committed part names, in commit order)
    KEYS[6] run ops hash: opId -> result of each state change already made (replays answer from it)

    ARGV[1] operation id: unique per commit; a replay of the same call (ioredis resends a command
            whose reply a dropped connection lost) answers the first call's result and changes nothing
    ARGV[2] lock token of the caller
    ARGV[3] step the caller read (must still be current)
    ARGV[4] part name, or "" when this step finished no ID
    ARGV[5] IDs succeeded in this step
    ARGV[6] IDs failed in this step
    ARGV[7] number E of error-code counts that follow
    ARGV[8 .. 7+2E] pairs: error code, count
    ARGV[8+2E ..] pairs: ID to retry, its retry state

  Output:
    {1, done}   committed; done = 1 when the run is sealed and every ID has an outcome
    {-1}        the caller no longer holds the job lock: it must discard its part
    {-2}        the step moved on (committed by another attempt): discard the part
    {-3}        the run's output is already written: nothing can commit any more
]]
local rcall = redis.call
local lockKey, meta, batchList, batchState, parts, ops = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local opId = ARGV[1]

local prior = rcall("HGET", ops, opId)
if prior then
  return cjson.decode(prior)
end
if rcall("HGET", meta, "finalized") == "1" then
  return {-3}
end
if rcall("GET", lockKey) ~= ARGV[2] then
  return {-1}
end
local step = tonumber(rcall("HGET", batchState, "step") or "0")
if step ~= tonumber(ARGV[3]) then
  return {-2}
end

if ARGV[4] ~= "" then
  rcall("RPUSH", parts, ARGV[4])
end
local succeeded = tonumber(ARGV[5])
local failed = tonumber(ARGV[6])
if succeeded > 0 then rcall("HINCRBY", meta, "succeeded", succeeded) end
if failed > 0 then rcall("HINCRBY", meta, "failed", failed) end

local nErrors = tonumber(ARGV[7])
local i = 8
for _ = 1, nErrors do
  rcall("HINCRBY", meta, "err:" .. ARGV[i], ARGV[i + 1])
  i = i + 2
end

rcall("DEL", batchList, batchState)
if i <= #ARGV then
  rcall("HSET", batchState, "step", step + 1)
  while i <= #ARGV do
    rcall("RPUSH", batchList, ARGV[i])
    rcall("HSET", batchState, "a:" .. ARGV[i], ARGV[i + 1])
    i = i + 2
  end
end

local done = 0
if rcall("HGET", meta, "sealed") == "1" then
  local total = tonumber(rcall("HGET", meta, "total") or "0")
  local finished = tonumber(rcall("HGET", meta, "succeeded") or "0") + tonumber(rcall("HGET", meta, "failed") or "0")
  if finished >= total then
    done = 1
  end
end
local result = {1, done}
rcall("HSET", ops, opId, cjson.encode(result))
return result
