-- Points an identifier's home record at a profile, if the home is empty or already
-- points at ARGV[1] (the expected owner, '' for none) or ARGV[2] (the target).
-- ARGV[3]: TTL. Returns {'OK'}, {'PROFILE'} (the home holds a live or frozen profile) or
-- {'OTHER', owner}.
if redis.call('HEXISTS', MAIN, 'C') == 1 then return {'PROFILE'} end
local owner = redis.call('HGET', MAIN, 'X')
if owner and owner ~= ARGV[1] and owner ~= ARGV[2] then return {'OTHER', owner} end
redis.call('HSET', MAIN, 'X', ARGV[2])
redis.call('EXPIRE', MAIN, ARGV[3])
return {'OK'}
