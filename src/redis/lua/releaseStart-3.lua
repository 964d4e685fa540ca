--[[
  Gives back a reserved start that was never sent (it would have left too
  late, its credential began resting meanwhile, or its token could not be
  had): the slot is free again. A start that never reached the server cannot
  count in its window, nor in its credential's pacing (the emission interval
  it took is given back), nor in its "requests" counter (takeCredential-n.lua
  counted it when it was taken).

  Input:
    KEYS[1] the credential's state hash
    KEYS[2] its start log (zset)
    KEYS[3] this call's operation record: a replayed call (ioredis resends a command whose reply a
            dropped connection lost) gives nothing back twice (kept 10 min)
    ARGV[1] the start's log entry (as takeCredential returned it; "" or "0": a start that was not
            logged, of a credential with no known limits: only its count is given back)
    ARGV[2] the emission interval the take moved "tat" by, µs ("0" or absent: none)

  Output:
    1 released, 0 nothing given back (released before, or a replay)
]]
--@include give-back-pace
if not redis.call("SET", KEYS[3], "1", "NX", "PX", 600000) then
  return 0
end
local removed = 1
if ARGV[1] ~= "" and ARGV[1] ~= "0" then
  removed = redis.call("ZREM", KEYS[2], ARGV[1])
end
if removed == 0 then
  return 0
end
redis.call("HINCRBY", KEYS[1], "requests", -1)
giveBackPace(KEYS[1], ARGV[2])
return 1
