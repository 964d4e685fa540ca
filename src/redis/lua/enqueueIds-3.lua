--[[
  Adds a chunk of IDs to a run: drops IDs the run has seen before, appends the
  new ones to the open batch, and closes the batch when it is full. Dedupe and
  batch membership change in one step, so a crashed producer loses nothing:
  re-running `enqueue` on the same run skips what is already in.

  Input:
    KEYS[1] run meta hash
    KEYS[2] pending-jobs set (batches closed but whose BullMQ job may not exist yet)
    KEYS[3] run ops hash: opId -> result of each call already made (a replayed call answers from it)

    ARGV[1] run key prefix ("pullq:<queue>:run:<run>:")
    ARGV[2] batch size (IDs per batch)
    ARGV[3] dedupe bucket bits B (the run has 2^B seen-buckets)
    ARGV[4] number V of valid IDs that follow
    ARGV[5] operation id, unique per call
    ARGV[6 .. 5+V] valid IDs
    ARGV[6+V ..] pairs for IDs that cannot be requested: ID, its failed.jsonl line (JSON)
      A new one is recorded at once: appended to "<prefix>inv", counted in total,
      failed and err:invalid_id. The finalizer adds those lines to failed.jsonl.

  Dedupe: SHA-1 of the ID; its first B bits pick the bucket hash
  "<prefix>s:<bucket>", the next 80 bits (10 bytes) are the field. With ~64
  fields a bucket stays a compact listpack (~12 bytes per ID); 80 bits make a
  collision (an ID wrongly skipped) ~1e-11 likely at 10M IDs. Hashing here,
  not in the producer, keeps the producer's memory flat.

  Output:
    {newIds, closedBatch1, closedBatch2, ...}   newIds counts valid and invalid new IDs
    -1 the run is sealed: enqueue is over for it
]]
local rcall = redis.call
local meta, pendingJobs, ops = KEYS[1], KEYS[2], KEYS[3]
local prefix = ARGV[1]
local batchSize = tonumber(ARGV[2])
local shift = 2 ^ (32 - tonumber(ARGV[3]))
local char, sub, tonum, floor = string.char, string.sub, tonumber, math.floor

local function slot(id)
  local h = redis.sha1hex(id)
  local bucket = floor(tonum(sub(h, 1, 8), 16) / shift)
  local bytes = {}
  for j = 0, 9 do
    bytes[j + 1] = tonum(sub(h, 9 + 2 * j, 10 + 2 * j), 16)
  end
  return bucket, char(unpack(bytes))
end

local prior = rcall("HGET", ops, ARGV[5])
if prior then
  return cjson.decode(prior)
end
if rcall("HGET", meta, "sealed") == "1" then
  return -1
end

local open = tonumber(rcall("HGET", meta, "open") or "0")
local openCount = tonumber(rcall("HGET", meta, "openCount") or "0")
local added = 0
local result = {0}

local lastValid = 5 + tonumber(ARGV[4])
for i = 6, lastValid do
  local bucket, field = slot(ARGV[i])
  if rcall("HSETNX", prefix .. "s:" .. bucket, field, "") == 1 then
    rcall("RPUSH", prefix .. "b:" .. open, ARGV[i])
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

local invalid = 0
for i = lastValid + 1, #ARGV, 2 do
  local bucket, field = slot(ARGV[i])
  if rcall("HSETNX", prefix .. "s:" .. bucket, field, "") == 1 then
    rcall("RPUSH", prefix .. "inv", ARGV[i + 1])
    invalid = invalid + 1
  end
end
if invalid > 0 then
  rcall("HINCRBY", meta, "failed", invalid)
  rcall("HINCRBY", meta, "err:invalid_id", invalid)
  added = added + invalid
end

rcall("HSET", meta, "open", open, "openCount", openCount)
rcall("HINCRBY", meta, "total", added)
result[1] = added
rcall("HSET", ops, ARGV[5], cjson.encode(result))
return result
