-- Ends a merge on the frozen loser: its data (and its wallet, MAIN .. ':w') now lives in the
-- survivor ARGV[1], so the record becomes a redirect with TTL ARGV[2]. Idempotent. Returns
-- {'OK'} or {'NONE'}.
local marks = redis.call('HMGET', MAIN, 'X', 'Y')
if marks[1] then return {'OK'} end
if not marks[2] then return {'NONE'} end
redis.call('DEL', MAIN .. ':w', unpack(KEYS))
redis.call('HSET', MAIN, 'X', ARGV[1])
redis.call('EXPIRE', MAIN, ARGV[2])
return {'OK'}
