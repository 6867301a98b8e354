-- Replaces preference fields. ARGV[1]: JSON {now, ttl, refresh, ids, set}.
-- Returns {'OK', preferences, identifiers due for a TTL refresh} or a diversion.
local args = cjson.decode(ARGV[1])
local stop = diverted()
if stop then return stop end
local flat = {}
for field, value in pairs(args.set) do
  flat[#flat + 1] = field
  flat[#flat + 1] = value
end
sliced('HSET', PREFS, flat)
add_identifiers(args.ids)
local due = finish_write(args.now, args.ttl, args.refresh)
return {'OK', redis.call('HGETALL', PREFS), due}
