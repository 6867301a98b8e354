-- Deletes a profile's keys, unless it redirects or is frozen by a merge.
-- Returns {'OK', keys deleted} or a diversion.
local stop = diverted()
if stop then return stop end
return {'OK', redis.call('DEL', unpack(KEYS))}
