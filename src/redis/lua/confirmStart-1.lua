--[[
  Moves a logged start (takeCredential-n.lua) to now, on Redis's clock: the
  response has come back, so the server saw the request at or before now.
  Budget spacing from this time holds however late the request really left.

  Input:
    KEYS[1] the credential's start log (zset)
    ARGV[1] the start's log entry (as takeCredential returned it)

  Output:
    1 moved, 0 the entry is gone (trimmed) or already later
]]
--@include now-ms
local now = nowMs()
return redis.call("ZADD", KEYS[1], "XX", "GT", "CH", now, ARGV[1])
