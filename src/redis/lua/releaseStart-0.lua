--[[
  Gives back a reserved start that was never sent (it would have left too
  late, or its credential began resting meanwhile): the slot is free again.
  A start that never reached the server cannot count in its window, nor in
  its credential's pacing (the emission interval it took is given back).

  Keys are derived from ARGV[1]: "<prefix><id>" (hash), "<prefix><id>:log" (zset).

  Input:
    ARGV[1] key prefix ("pullq:<queue>:cred:")
    ARGV[2] credential id
    ARGV[3] seq of the start (as takeCredential returned it)
    ARGV[4] the emission interval the take moved "tat" by, µs ("0" or absent: none)

  Output:
    1 released, 0 it was not in the log (released before: nothing is given back twice)
]]
local key = ARGV[1] .. ARGV[2]
local removed = redis.call("ZREM", key .. ":log", ARGV[3])
local pace = tonumber(ARGV[4] or "0") or 0
if removed == 1 and pace > 0 and redis.call("HEXISTS", key, "tat") == 1 then
  redis.call("HINCRBYFLOAT", key, "tat", -pace / 1000)
end
return removed
