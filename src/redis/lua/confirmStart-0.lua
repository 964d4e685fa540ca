--[[
  Moves a logged start (takeCredential-0.lua) to now, on Redis's clock: the
  response has come back, so the server saw the request at or before now.
  Budget spacing from this time holds however late the request really left.

  Keys are derived from ARGV[1]: "<prefix><id>:log" (zset).

  Input:
    ARGV[1] key prefix ("pullq:<queue>:cred:")
    ARGV[2] credential id
    ARGV[3] seq of the start (as takeCredential returned it)

  Output:
    1 moved, 0 the entry is gone (trimmed) or already later
]]
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call("ZADD", ARGV[1] .. ARGV[2] .. ":log", "XX", "GT", "CH", now, ARGV[3])
