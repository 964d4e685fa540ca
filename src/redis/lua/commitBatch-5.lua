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

    ARGV[1] lock token of the caller
    ARGV[2] step the caller read (must still be current)
    ARGV[3] part name, or "" when this step finished no ID
    ARGV[4] IDs succeeded in this step
    ARGV[5] IDs failed in this step
    ARGV[6] number E of error-code counts that follow
    ARGV[7 .. 6+2E] pairs: error code, count
    ARGV[7+2E ..] pairs: ID to retry, its retry state

  Output:
    {1, done}   committed; done = 1 when the run is sealed and every ID has an outcome
    {-1}        the caller no longer holds the job lock: it must discard its part
    {-2}        the step moved on (committed by another attempt): discard the part
]]
local rcall = redis.call
local lockKey, meta, batchList, batchState, parts = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]

if rcall("GET", lockKey) ~= ARGV[1] then
  return {-1}
end
local step = tonumber(rcall("HGET", batchState, "step") or "0")
if step ~= tonumber(ARGV[2]) then
  return {-2}
end

if ARGV[3] ~= "" then
  rcall("RPUSH", parts, ARGV[3])
end
local succeeded = tonumber(ARGV[4])
local failed = tonumber(ARGV[5])
if succeeded > 0 then rcall("HINCRBY", meta, "succeeded", succeeded) end
if failed > 0 then rcall("HINCRBY", meta, "failed", failed) end

local nErrors = tonumber(ARGV[6])
local i = 7
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
return {1, done}
