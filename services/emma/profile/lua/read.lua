-- Reads what GetProfile needs in one round trip.
-- ARGV[1]: '1' to follow redirects inside the script (single Redis only: the target's
-- keys are not in KEYS, which a Redis Cluster forbids); ARGV[2]: the key prefix.
-- Returns {'OK', customer id ('' when not followed), record, consent, preferences,
-- life events, offer wallet (wallet.py; the same hash tag)}, {'NONE'}, or a diversion
-- the caller follows.
local follow, prefix = ARGV[1] == '1', ARGV[2]
local main, cid = MAIN, ''
for _ = 1, 4 do
  local marks = redis.call('HMGET', main, 'X', 'Y')
  if marks[2] then return {'Y', marks[2], cid} end
  if not marks[1] then break end
  if not follow then return {'X', marks[1]} end
  cid = marks[1]
  main = '{' .. prefix .. ':c:' .. cid .. '}'
end
local record = redis.call('HGETALL', main)
if #record == 0 then return {'NONE'} end
return {
  'OK', cid, record,
  redis.call('HGETALL', main .. ':k'),
  redis.call('HGETALL', main .. ':f'),
  redis.call('LRANGE', main .. ':v', 0, -1),
  redis.call('HGETALL', main .. ':w'),
}
