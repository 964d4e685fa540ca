--[[
  Gives back a reserved start that was never sent (it would have left too
  late, or its credential began resting meanwhile): the slot is free again.
  A start that never reached the server cannot count in its window.

  Keys are derived from ARGV[1]: "<prefix><id>:log" (zset).

  Input:
    ARGV[1] key prefix ("pullq:<queue>:cred:")
    ARGV[2] credential id
    ARGV[3] seq of the start (as takeCredential returned it)

  Output:
    1 released, 0 it was not in the log
]]
return redis.call("ZREM", ARGV[1] .. ARGV[2] .. ":log", ARGV[3])
