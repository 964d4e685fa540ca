-- Reads a budget "q:wMs;q:wMs" into a list of {q, w}, or nil when it is not one a take may trust: at most
-- 8 limits, each a whole quota 1..1e9 and a whole window 1 ms..1 day (src/http/rate-limit-headers.ts bounds
-- what an API announces the same way; this checks again, for data stored before or written by anything else).
-- "" is no limit: an empty list.
local function readLimits(s)
  if s == nil or s == false then return nil end
  if s == "" then return {} end
  if #s > 200 then return nil end
  local out = {}
  for member in string.gmatch(s .. ";", "([^;]*);") do
    local q, w = string.match(member, "^(%d+):(%d+)$")
    if not q or #q > 10 or #w > 8 or #out == 8 then return nil end
    q, w = tonumber(q), tonumber(w)
    if q < 1 or q > 1000000000 or w < 1 or w > 86400000 then return nil end
    out[#out + 1] = {q, w}
  end
  return out
end
