--[[
  Takes a credential for one request, for the whole fleet at once. Among the
  candidates it picks the one that can start soonest (now, if any can; ties go
  to the most budget headroom) and reserves that start in the credential's
  window log, so no replica ever needs to poll: it sleeps until its start.

  A credential with an in-flight cap (budget.maxInFlight) holds one lease per
  request in its in-flight zset (operation id scored by its expiry):
  a pick takes one, the response gives it back (ZREM), and a crashed replica's
  leases expire. A credential at its cap is not a candidate until one ends.

  A credential's budget is a list of limits "q:wMs" (at most q request starts
  in any wMs window, a sliding window kept as a log of start times, on Redis's
  clock). Consecutive starts q apart are spaced by w plus a safety margin
  (1% of w, at least 10 ms, at most 1 s; a start is used at most 10 ms
  late, see LATE_START_MS). A start is logged at its reserved
  time, then moved to the time its response came back (confirmStart-1.lua):
  the server saw the request somewhere in between, so spacing from the later
  time holds whatever the network and the event loop did. To make that work a
  start is reserved at most half the credential's shortest window ahead, when
  the starts it is spaced from have answered. A rest (Retry-After, a reset, a
  429 backoff) and a quarantine (401s) are honoured too.

  Starts are also paced (GCRA, the generic cell rate algorithm): a credential
  with limits has an emission interval T, the largest w/q of its limits, and
  a burst b (budget.burst; by default as many starts as T allows in 250 ms,
  at least 1, at most the smallest q). It keeps a theoretical arrival time "tat" in its hash: a start
  may be reserved at tat - (b - 1)·T or later, and moves tat to
  max(tat, start) + T. So at most b starts leave back to back and the rest go
  every T, which APIs that punish bursts (token buckets, secondary limits)
  accept and sliding windows use fully. A rest ends with no burst credit
  (tat is moved to restUntil + (b - 1)·T once per rest, "tatRest"): after a
  Retry-After the credential restarts one start at a time, so a 429 finds at
  most the one request already on the wire.

  A replayed call (ioredis resends a command whose reply a dropped connection
  lost) answers the first call's reservation instead of reserving a second
  start: reservations are remembered by operation id for 20-40 s in a hash per
  20 s of the caller's clock (KEYS[2], KEYS[3]: a replay names the same keys).
  Only reservations in a window log are remembered, and looked up only when
  the pick has a budget: a take of a credential without limits reserves
  nothing, and costs nothing extra. A replay later than that, or one whose
  first call reserved a budgeted credential while an unbudgeted one is now the
  pick, leaves one start of the budget unused: never one too many.

  Every key is declared (one hash slot: the queue's tag, see src/redis/keys.ts).

  Input:
    KEYS[1] the pool's take counter (credentials take turns)
    KEYS[2] reservations of this 20 s (hash: opId -> answer), KEYS[3] those of the 20 s before
    KEYS[3i+1 .. 3i+3] per candidate i (1-based): its state hash, its start log (zset), its in-flight leases (zset)
    ARGV[1] horizon, ms: reserve only a start at most this far ahead
    ARGV[2] slow-start limits for a credential with no budget that has seen no response yet ("q:wMs")
    ARGV[3] operation id, unique per call; also the name of the in-flight lease it takes
    ARGV[4] lease length, ms, for credentials with an in-flight cap (how long a request may take at most)
    ARGV[5..] triples per candidate: configured limits ("q:wMs;q:wMs" or "" to use what was learned;
            either is read by read-limits.lua, and one it does not trust means the slow start),
            in-flight cap ("" = none): budget.maxInFlight, burst ("" = the default): budget.burst

  Output:
    {1, index, startAtMs, nowMs, start, paceUs}
                                       reserved: start at startAtMs (Redis clock); index is 1-based;
                                       start names the log entry: the operation id, unique per take, so
                                       no later take can name the same entry, whatever happened to the
                                       credential's hash ("" when the credential has no limit);
                                       paceUs is the emission interval T it moved tat by, in µs (0: none),
                                       to give back with the start if it is not sent (releaseStart-3.lua)
    {0, index, retryAtMs, nowMs}       nothing can be reserved now; ask again at retryAtMs
                                       (every candidate at its in-flight cap: in 50 ms)
    {-1, 0, 0, nowMs}                  every candidate is quarantined
]]
local rcall = redis.call
--@include now-ms
--@include read-limits
local now = nowMs()
local horizon = tonumber(ARGV[1])
local slowStart = ARGV[2]
local opId = ARGV[3]
local leaseMs = tonumber(ARGV[4])
local takes = KEYS[2]
local function replayed()
  local prior = rcall("HGET", takes, opId) or rcall("HGET", KEYS[3], opId)
  if prior then
    local r = cjson.decode(prior)
    r[4] = now
    return r
  end
end

local anyCap = false
for i = 6, #ARGV, 3 do
  if ARGV[i] ~= "" then anyCap = true end
end
if anyCap then
  -- Before counting leases: a replay's own lease would make its credential look full.
  local r = replayed()
  if r then return r end
end

local best, bestStart, bestHeadroom, bestLimits, bestMaxW, bestMinW, bestTurn, bestCap, bestPace, bestTat, bestRest
local quarantined, candidates, fullIndex = 0, 0, nil

for i = 5, #ARGV, 3 do
  candidates = candidates + 1
  local index = (i - 2) / 3
  local key, log, inflightKey = KEYS[3 * index + 1], KEYS[3 * index + 2], KEYS[3 * index + 3]
  local cap = tonumber(ARGV[i + 1])
  local st = rcall("HMGET", key, "qUntil", "restUntil", "limits", "observed", "turn", "tat", "tatRest")
  local full = false
  if cap then
    rcall("ZREMRANGEBYSCORE", inflightKey, "-inf", now)
    full = rcall("ZCARD", inflightKey) >= cap
  end
  if st[1] and tonumber(st[1]) > now then
    quarantined = quarantined + 1
  elseif full then
    fullIndex = fullIndex or index
  else
    local limits = ARGV[i]
    if limits == "" then
      if st[3] then limits = st[3] elseif st[4] then limits = "" else limits = slowStart end
    end
    -- A budget that is not one (a decimal, more than 8 limits, a window over a day) is not trusted: it would
    -- be misread, or cost a command per limit on every take. Until a response teaches a valid one, the
    -- credential goes at the slow start.
    local parsed = readLimits(limits)
    if parsed == nil then
      limits = slowStart
      parsed = readLimits(slowStart) or {{1, 250}}
    end
    local start = now
    if st[2] and tonumber(st[2]) > start then start = tonumber(st[2]) end
    local headroom = 1
    local maxW, minW = 0, nil
    local size = nil
    local pace, minQ = 0, nil
    for _, l in ipairs(parsed) do
      local q, w = l[1], l[2]
      if w / q > pace then pace = w / q end
      if minQ == nil or q < minQ then minQ = q end
      local margin = math.min(1000, math.max(10, math.floor(w / 100)))
      if w + margin > maxW then maxW = w + margin end
      if minW == nil or w < minW then minW = w end
      size = size or rcall("ZCARD", log)
      if size >= q then
        local e = rcall("ZRANGE", log, -q, -q, "WITHSCORES")
        local free = tonumber(e[2]) + w + margin
        if free > start then start = free end
      end
      local used = rcall("ZCOUNT", log, now - w, "+inf")
      local h = (q - used) / q
      if h < headroom then headroom = h end
    end
    local tat, restMark = nil, nil
    if pace > 0 then
      local burst = tonumber(ARGV[i + 2]) or math.max(1, math.min(minQ, math.floor(250 / pace)))
      local tau = (burst - 1) * pace
      tat = tonumber(st[6] or "0")
      local restUntil = tonumber(st[2] or "0")
      if restUntil > tonumber(st[7] or "0") then
        restMark = restUntil
        if restUntil + tau > tat then tat = restUntil + tau end
      end
      if tat - tau > start then start = math.ceil(tat - tau) end
    end
    local turn = tonumber(st[5] or "0")
    if best == nil or start < bestStart or (start == bestStart and (headroom > bestHeadroom or (headroom == bestHeadroom and turn < bestTurn))) then
      best, bestStart, bestHeadroom, bestLimits, bestMaxW, bestMinW, bestTurn, bestCap = index, start, headroom, limits, maxW, minW, turn, cap
      bestPace, bestTat, bestRest = pace, tat, restMark
    end
  end
end

if best == nil then
  if fullIndex then return {0, fullIndex, now + 50, now} end
  return {-1, 0, 0, now}
end
if bestMaxW > 0 and not anyCap then
  local r = replayed()
  if r then return r end
end
if bestMinW and bestMinW / 2 < horizon then
  horizon = bestMinW / 2
end
if bestStart - now > horizon then
  return {0, best, math.floor(bestStart - horizon), now}
end

local key = KEYS[3 * best + 1]
rcall("HINCRBY", key, "requests", 1)
rcall("HSET", key, "turn", rcall("INCR", KEYS[1]))
local entry = ""
if bestMaxW > 0 then
  local log = KEYS[3 * best + 2]
  rcall("ZREMRANGEBYSCORE", log, "-inf", now - bestMaxW)
  entry = opId
  rcall("ZADD", log, bestStart, entry)
  -- Long enough for a late confirmation too.
  rcall("PEXPIRE", log, bestStart - now + bestMaxW + 600000)
end
if bestPace > 0 then
  local tat = bestTat
  if bestStart > tat then tat = bestStart end
  rcall("HSET", key, "tat", tat + bestPace)
  if bestRest then rcall("HSET", key, "tatRest", bestRest) end
end
if bestCap then
  local inflight = KEYS[3 * best + 3]
  rcall("ZADD", inflight, bestStart + leaseMs, opId)
  rcall("PEXPIRE", inflight, bestStart - now + leaseMs + 60000)
end
if bestMaxW > 0 or bestCap then
  rcall("HSET", takes, opId, cjson.encode({1, best, bestStart, now, entry, math.floor(bestPace * 1000)}))
  rcall("PEXPIRE", takes, 45000)
end
return {1, best, bestStart, now, entry, math.floor(bestPace * 1000)}
