--[[
  Gives back the budget of a start that was sent and answered, but that the
  API did not count (a 304 to a conditional request, budget.free304: GitHub
  does not count those against its primary rate limit). Its slot in the
  window log and its pacing interval are free again, so unchanged IDs go at
  the speed of the API, not of the budget. Unlike releaseStart-3.lua the
  request stays in the "requests" counter (it was sent); "free" counts it.

  Input:
    KEYS[1] the credential's state hash
    KEYS[2] its start log (zset)
    KEYS[3] this call's operation record: a replayed call (ioredis resends a command whose reply a
            dropped connection lost) gives nothing back twice (kept 10 min)
    ARGV[1] the start's log entry (as takeCredential returned it; "" or "0": a start that was not
            logged, of a credential with no known limits: only counted as free)
    ARGV[2] the emission interval the take moved "tat" by, µs ("0" or absent: none)

  Output:
    1 refunded, 0 nothing given back (refunded before, or a replay)
]]
--@include give-back-pace
if not redis.call("SET", KEYS[3], "1", "NX", "PX", 600000) then
  return 0
end
if ARGV[1] ~= "" and ARGV[1] ~= "0" then
  -- Gone already (the log was trimmed past it): nothing left to give back but the count.
  redis.call("ZREM", KEYS[2], ARGV[1])
end
redis.call("HINCRBY", KEYS[1], "free", 1)
giveBackPace(KEYS[1], ARGV[2])
return 1
