-- Applies offer deliveries and redemptions to the customer's wallet (common.lua
-- wallet_apply), unless the record redirects or is frozen by a merge: the wallet moves with
-- a merge, so a write must reach the profile it moves to. ARGV: now, grace seconds, JSON
-- list of ops. Returns {'OK'}, {'NONE'} (no profile: nothing written) or a diversion.
local stop = diverted()
if stop then return stop end
if redis.call('EXISTS', MAIN) == 0 then return {'NONE'} end
wallet_apply(MAIN .. ':w', tonumber(ARGV[1]), tonumber(ARGV[2]), cjson.decode(ARGV[3]))
return {'OK'}
