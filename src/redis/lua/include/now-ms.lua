-- Redis's clock in ms (one clock for the whole fleet, whatever the replicas' clocks say).
local function nowMs()
  local t = redis.call("TIME")
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
