--[[
  Gives back a reserved start that was never sent (it would have left too
  late, or its credential began resting meanwhile): the slot is free again.
  A start that never reached the server cannot count in its window, nor in
  its credential's pacing (the emission interval it took is given back), nor
  in its "requests" counter (takeCredential-n.lua counted it when taken).

  Input:
    KEYS[1] the credential's state hash
    KEYS[2] its start log (zset)
    ARGV[1] seq of the start (as takeCredential returned it)
    ARGV[2] the emission interval the take moved "tat" by, µs ("0" or absent: none)

  Output:
    1 released, 0 it was not in the log (released before: nothing is given back twice)
]]
local removed = redis.call("ZREM", KEYS[2], ARGV[1])
local pace = tonumber(ARGV[2] or "0") or 0
if removed == 1 then
  redis.call("HINCRBY", KEYS[1], "requests", -1)
end
if removed == 1 and pace > 0 and redis.call("HEXISTS", KEYS[1], "tat") == 1 then
  redis.call("HINCRBYFLOAT", KEYS[1], "tat", -pace / 1000)
end
return removed
