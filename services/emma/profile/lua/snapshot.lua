-- Reads every key of a customer (export, merge); with ARGV[1] = 'mark', first freezes a
-- live profile for a merge into ARGV[2] (Y = "<target>|<started>", ARGV[3] = started).
-- Returns {status, marker, record, consent, ledger, preferences, life, seen, seen_prev,
-- wallet}: status 'X' (a redirect), 'Y' (frozen; marker is Y), 'OK' (live) or 'NONE'. The
-- wallet (MAIN .. ':w', same hash tag) of a frozen record accepts no writes (wallet.lua),
-- so its snapshot too is the same whenever it is read.
local record = hash_table(MAIN)
local status, marker = 'NONE', ''
if record.X then
  status, marker = 'X', record.X
elseif record.Y then
  status, marker = 'Y', record.Y
elseif record.C then
  status = 'OK'
  if ARGV[1] == 'mark' then
    marker = ARGV[2] .. '|' .. ARGV[3]
    redis.call('HSET', MAIN, 'Y', marker)
    status = 'Y'
  end
end
return {
  status, marker,
  redis.call('HGETALL', MAIN),
  redis.call('HGETALL', CONSENT),
  redis.call('LRANGE', LEDGER, 0, -1),
  redis.call('HGETALL', PREFS),
  redis.call('LRANGE', LIFE, 0, -1),
  redis.call('SMEMBERS', SEEN),
  redis.call('SMEMBERS', SEEN_PREV),
  redis.call('HGETALL', MAIN .. ':w'),
}
