--[[
  Adds a chunk of IDs to a run: drops IDs the run has seen before, appends the
  new ones to their batches, and closes each batch whose last position the
  chunk reaches. Dedupe and batch membership change in one step, so a crashed
  producer loses nothing: re-running `enqueue` on the same run skips what is
  already in.

  Positions: the producer numbers the IDs it sends (duplicates included); the
  ID at position p belongs to batch floor(p / batchSize), so every key a call
  touches is known before it is sent and declared here (one hash slot: the
  queue's tag). A batch is closed (its job may be added) when the chunk holding
  its last position runs, if it holds any ID. Chunks normally run in the order
  they were numbered; one that runs after a later chunk (a retry) could add to
  a closed batch, so it is refused (-2) and numbered again by the producer.
  One whose first position is past the run's `pos` leaves a gap (-4): either
  an earlier chunk has not run yet (the producer waits for it and sends this
  one again), or Redis lost an earlier chunk it had acknowledged (a restart
  without fsync, a failover to a replica that lagged): the producer says so.

  Dedupe: the producer picks the ID's bucket hash "…s:<bucket>" (the first B
  bits of a 32-bit FNV-1a of the ID: it names the key, so it must be known
  before the call); the field is 80 bits (10 bytes) of the ID's SHA-1,
  computed here. With ~64 fields a bucket stays a compact listpack (~12 bytes
  per ID); 80 bits make a collision (an ID wrongly skipped) ~1e-11 likely at
  10M IDs.

  Input:
    KEYS[1] run meta hash
    KEYS[2] pending-jobs set (batches closed but whose BullMQ job may not exist yet)
    KEYS[3] run ops hash: opId -> result of each call already made (a replayed call answers from it)
    KEYS[4] the run's invalid-ID lines (list)
    KEYS[5 .. 4+NB] the lists of batches b0 .. b0+NB-1, b0 = floor(p0 / batchSize)
    KEYS[5+NB ..] the dedupe buckets the chunk's IDs fall in

    ARGV[1] operation id, unique per call
    ARGV[2] batch size (IDs per batch)
    ARGV[3] p0: position of the chunk's first valid ID
    ARGV[4] NB: number of batch keys
    ARGV[5] V: number of valid IDs
    ARGV[6] the index into KEYS of each valid ID's bucket, in order, space-separated (one argument,
            not one per ID: fewer arguments to build and send)
    ARGV[7] the V valid IDs, in order, each followed by "\n" (one argument, not one per ID: with a
            key per ID already declared, an argument per ID doubled the producer's garbage per call;
            an ID is a line of the IDs file, so it never holds "\n")
    ARGV[8] the same as ARGV[6] for the IDs that cannot be requested, then pairs: ID, its
      failed.jsonl line (JSON). A new one is recorded at once: appended to KEYS[4], counted in
      total, failed and err:invalid_id. The finalizer adds those lines to failed.jsonl.

  Output:
    {newIds, closedBatch1, closedBatch2, ...}   newIds counts valid and invalid new IDs
    -1 the run is sealed: enqueue is over for it
    {-2} the chunk's positions are behind the run's open batch: number it again
    {-4} p0 is past the run's `pos`: the positions before it are not in the run (not yet, or lost)
]]
local rcall = redis.call
local meta, pendingJobs, ops, inv = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local opId = ARGV[1]
local batchSize = tonumber(ARGV[2])
local p0 = tonumber(ARGV[3])
local nb = tonumber(ARGV[4])
local floor = math.floor
local char, sub, tonum = string.char, string.sub, tonumber

-- The dedupe field of an ID: bytes 5-14 of its SHA-1.
local function field(id)
  local h = redis.sha1hex(id)
  local bytes = {}
  for j = 0, 9 do
    bytes[j + 1] = tonum(sub(h, 9 + 2 * j, 10 + 2 * j), 16)
  end
  return char(unpack(bytes))
end

local prior = rcall("HGET", ops, opId)
if prior then
  return cjson.decode(prior)
end
if rcall("HGET", meta, "sealed") == "1" then
  return -1
end
if p0 > tonumber(rcall("HGET", meta, "pos") or "0") then
  return {-4}
end
local b0 = floor(p0 / batchSize)
if b0 < tonumber(rcall("HGET", meta, "open") or "0") then
  return {-2}
end

local added = 0
local result = {0}
local p = p0
local ids, from, find = ARGV[7], 1, string.find
for ki in string.gmatch(ARGV[6], "%d+") do
  local nl = find(ids, "\n", from, true)
  local id = sub(ids, from, nl - 1)
  from = nl + 1
  local b = floor(p / batchSize)
  local list = KEYS[5 + b - b0]
  if rcall("HSETNX", KEYS[tonum(ki)], field(id), "") == 1 then
    rcall("RPUSH", list, id)
    added = added + 1
  end
  if p % batchSize == batchSize - 1 and rcall("LLEN", list) > 0 then
    rcall("SADD", pendingJobs, b)
    result[#result + 1] = b
  end
  p = p + 1
end

local invalid = 0
local i = 9
for ki in string.gmatch(ARGV[8] or "", "%d+") do
  if rcall("HSETNX", KEYS[tonum(ki)], field(ARGV[i]), "") == 1 then
    rcall("RPUSH", inv, ARGV[i + 1])
    invalid = invalid + 1
  end
  i = i + 2
end
if invalid > 0 then
  rcall("HINCRBY", meta, "failed", invalid)
  rcall("HINCRBY", meta, "err:invalid_id", invalid)
  added = added + invalid
end

-- The batch now open (the one the next position falls in), and how many IDs it holds, for sealRun.
local open = floor(p / batchSize)
local openCount = 0
if open - b0 < nb then openCount = rcall("LLEN", KEYS[5 + open - b0]) end
rcall("HSET", meta, "open", open, "openCount", openCount)
if p > tonumber(rcall("HGET", meta, "pos") or "0") then rcall("HSET", meta, "pos", p) end
rcall("HINCRBY", meta, "total", added)
result[1] = added
rcall("HSET", ops, opId, cjson.encode(result))
return result
