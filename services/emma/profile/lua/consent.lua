-- Appends consent changes and stores the effective state the caller folded from the
-- version K it read. ARGV[1]: JSON {k, now, ttl, refresh, ids, append, effective}.
-- Returns {'OK', identifiers due for a TTL refresh}, {'RETRY'} or a diversion.
local args = cjson.decode(ARGV[1])
local stop = diverted()
if stop then return stop end
if (redis.call('HGET', MAIN, 'K') or '0') ~= args.k then return {'RETRY'} end
sliced('RPUSH', LEDGER, args.append)
redis.call('DEL', CONSENT)
local flat = {}
for field, value in pairs(args.effective) do
  flat[#flat + 1] = field
  flat[#flat + 1] = value
end
sliced('HSET', CONSENT, flat)
redis.call('HINCRBY', MAIN, 'K', 1)
add_identifiers(args.ids)
return {'OK', finish_write(args.now, args.ttl, args.refresh)}
