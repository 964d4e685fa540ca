--[[
  Records what one response said about a credential, for the whole fleet:
  a rest (Retry-After, an exhausted quota until its reset, or a per-credential
  exponential backoff for a bare 429), learned limits, 401s (two in a row
  quarantine a credential: one can be a blip), and the counters `status` and
  `pull`'s summary show: requests (takeCredential-n.lua), n429, n401, n403,
  rests (rests begun) and restedMs (time covered by rests: a rest set or
  extended adds only the time no earlier rest covered, so replicas reporting
  the same 429s never count a moment twice).

  Input:
    KEYS[1] the credential's state hash ("…cred:<id>": a name or fingerprint, never the secret)
    KEYS[2] its start log (zset)
    KEYS[3] this call's operation record: a replayed call (ioredis resends a command whose reply a
            dropped connection lost) answers the first call's result and counts nothing twice (kept 10 min)
    ARGV[1] outcome: ok | limited | unauthorized | forbidden | other
    ARGV[2] rest ms the response asked for ("" = none)
    ARGV[3] limits the response announced ("q:wMs;..."), "-" = no rate-limit headers, "" = keep;
            new limits also reset the credential's pacing ("tat"); limits read-limits.lua does not
            trust are not stored (as "")
    ARGV[4] bare-429 backoff base ms
    ARGV[5] bare-429 backoff max ms
    ARGV[6] jitter draw in [0, 1)
    ARGV[7] consecutive 401s that quarantine
    ARGV[8] quarantine length ms
    ARGV[9] quarantine reason (default "unauthorized")
    ARGV[10] the request's logged start (its entry, as takeCredential returned it), "" or "0" if none:
             moved to now (see confirmStart-1.lua)
    ARGV[11] "1" when the rest comes only from an answer that said remaining 0 but was not refused:
             skipped when the credential's own log already holds a full window for one of its limits
             (its pacing keeps the next start past the reset anyway; resting too would idle it)
    ARGV[12] the credential's configured limits ("q:wMs;..." or "" to use the learned ones)
    ARGV[13] when the server asked for a longer wait than ARGV[2] (capped by retry.maxWaitMs): what it
             asked, ms ("" = not capped); kept as "restAsked" for `pullq status`

  Output:
    {0, 0}          nothing new
    {1, untilMs}    the credential started resting (it was not resting before)
    {2, untilMs}    the credential was quarantined now
]]
local rcall = redis.call
--@include now-ms
--@include read-limits
local now = nowMs()
local key = KEYS[1]
local outcome = ARGV[1]
local opKey = KEYS[3]
local prior = rcall("GET", opKey)
if prior then
  return cjson.decode(prior)
end
local function answer(r)
  rcall("SET", opKey, cjson.encode(r), "PX", 600000)
  return r
end
if ARGV[10] and ARGV[10] ~= "" and ARGV[10] ~= "0" then
  rcall("ZADD", KEYS[2], "XX", "GT", now, ARGV[10])
end
local restMs = ARGV[2]
local limits = ARGV[3]

-- Limits a take would not trust (read-limits.lua) are not stored: kept as if the answer said nothing new.
if limits ~= "-" and limits ~= "" and readLimits(limits) == nil then limits = "" end
if limits == "-" or limits == "" then
  -- A stored budget no take trusts (written before budgets were checked) goes: takes go at the slow
  -- start (or unpaced, once observed) until the API announces a budget again.
  local stored = rcall("HGET", key, "limits")
  if stored and readLimits(stored) == nil then rcall("HDEL", key, "limits") end
end
if limits == "-" then
  rcall("HSET", key, "observed", "1")
elseif limits ~= "" then
  -- New limits pace afresh (takeCredential-n.lua): the slow start's interval does not carry over. The
  -- same limits again (another replica learning them too) keep the pacing as it is.
  if rcall("HGET", key, "limits") ~= limits then rcall("HDEL", key, "tat") end
  rcall("HSET", key, "observed", "1", "limits", limits)
end

local rest = nil
if restMs ~= "" then rest = tonumber(restMs) end

if outcome == "ok" then
  rcall("HDEL", key, "bare429", "u401")
elseif outcome == "limited" then
  rcall("HINCRBY", key, "n429", 1)
  if rest == nil then
    local n = rcall("HINCRBY", key, "bare429", 1)
    local ceiling = math.min(tonumber(ARGV[5]), tonumber(ARGV[4]) * 2 ^ (n - 1))
    -- Equal jitter: at least half the ceiling, so a rested credential really rests.
    rest = math.floor(ceiling * (0.5 + 0.5 * tonumber(ARGV[6])))
  end
elseif outcome == "forbidden" then
  rcall("HINCRBY", key, "n403", 1)
elseif outcome == "unauthorized" then
  rcall("HINCRBY", key, "n401", 1)
  local u = rcall("HINCRBY", key, "u401", 1)
  if u >= tonumber(ARGV[7]) then
    local q = rcall("HGET", key, "qUntil")
    if not q or tonumber(q) <= now then
      local untilMs = now + tonumber(ARGV[8])
      rcall("HSET", key, "qUntil", untilMs, "qReason", ARGV[9] or "unauthorized")
      return answer({2, untilMs})
    end
  end
end

if rest ~= nil and rest > 0 and ARGV[11] == "1" then
  local limits = ARGV[12]
  if limits == nil or limits == "" then limits = rcall("HGET", key, "limits") or "" end
  -- An untrusted budget holds no window: the rest stands.
  for _, l in ipairs(readLimits(limits) or {}) do
    if rcall("ZCOUNT", KEYS[2], now - l[2], "+inf") >= l[1] then
      rest = nil
      break
    end
  end
end

if rest ~= nil and rest > 0 then
  local untilMs = math.floor(now + rest)
  local old = tonumber(rcall("HGET", key, "restUntil") or "0")
  if untilMs > old then
    rcall("HSET", key, "restUntil", untilMs, "restAsked", ARGV[13] or "")
    rcall("HINCRBY", key, "restedMs", untilMs - math.max(old, now))
    if old <= now then
      rcall("HINCRBY", key, "rests", 1)
      return answer({1, untilMs})
    end
  end
end
return answer({0, 0})
