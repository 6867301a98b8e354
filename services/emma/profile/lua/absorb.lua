-- Replaces a live profile with its merge with a frozen one, if nothing wrote to it since
-- it was read (version G), and applies the frozen one's wallet to its own in the same step.
-- ARGV[1]: JSON {g, now, ttl, sttl, sttl_prev, grace, record, consent, ledger, preferences,
-- life_events, seen, seen_prev, wallet}; the record's U, G and R are set here; wallet holds
-- wallet ops (common.lua wallet_apply), which the wallet's own writes commute with, so it is
-- added to, not replaced.
-- Returns {'OK', identifiers due for a TTL refresh}, {'RETRY'} or a diversion.
local args = cjson.decode(ARGV[1])
local stop = diverted()
if stop then return stop end
if (redis.call('HGET', MAIN, 'G') or '0') ~= args.g then return {'RETRY'} end
if redis.call('HEXISTS', MAIN, 'C') == 0 then return {'NONE'} end

local function write_hash(key, values)
  redis.call('DEL', key)
  local flat = {}
  for field, value in pairs(values) do
    flat[#flat + 1] = field
    flat[#flat + 1] = value
  end
  sliced('HSET', key, flat)
end

local function write_list(key, values)
  redis.call('DEL', key)
  sliced('RPUSH', key, values)
end

write_hash(MAIN, args.record)
redis.call('HSET', MAIN, 'G', args.g)
write_hash(CONSENT, args.consent)
write_list(LEDGER, args.ledger)
write_hash(PREFS, args.preferences)
write_list(LIFE, args.life_events)
if #args.seen > 0 then
  sliced('SADD', SEEN, args.seen)
  redis.call('EXPIRE', SEEN, args.sttl)
end
if #args.seen_prev > 0 then
  sliced('SADD', SEEN_PREV, args.seen_prev)
  redis.call('EXPIRE', SEEN_PREV, args.sttl_prev)
end
if #args.wallet > 0 then wallet_apply(MAIN .. ':w', args.now, args.grace, args.wallet) end
-- Every identifier's redirect record is refreshed: the loser's are new to this profile.
return {'OK', finish_write(args.now, args.ttl, 0)}
