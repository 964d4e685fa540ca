--[[
  Finds closed batches that hold IDs but have no BullMQ job: what a commit
  that Redis acknowledged and then lost leaves once the job completed. Reads
  only, so a replayed call changes nothing. One call, not a pipeline of LLEN
  and EXISTS: a lost reply costs one command, not a whole pipeline.

  Input:
    KEYS[1 .. N]     the batch lists
    KEYS[N+1 .. 2N]  the BullMQ job hash of each batch, in the same order

    ARGV[1] N

  Output:
    {i, ...}  the 0-based indexes of the batches whose list is not empty and whose job hash does not exist
]]
local rcall = redis.call
local n = tonumber(ARGV[1])
local out = {}
for i = 1, n do
  if rcall("LLEN", KEYS[i]) > 0 and rcall("EXISTS", KEYS[n + i]) == 0 then
    out[#out + 1] = i - 1
  end
end
return out
