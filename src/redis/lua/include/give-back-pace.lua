-- Moves a credential's pacing clock ("tat") back by the emission interval a take moved it by
-- (paceUs, µs; 0: none), so a start given back (released, or a free 304 refunded) frees its slot.
local function giveBackPace(stateKey, paceUs)
  local pace = tonumber(paceUs or "0") or 0
  if pace > 0 and redis.call("HEXISTS", stateKey, "tat") == 1 then
    redis.call("HINCRBYFLOAT", stateKey, "tat", -pace / 1000)
  end
end
