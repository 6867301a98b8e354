-- Deletes a profile's keys and its offer wallet (same hash tag), unless it redirects or is
-- frozen by a merge. On a single Redis it also appends the erasure to the profile-events
-- stream in the same atomic step, naming the canonical id and every identifier, so
-- consumers can delete what they keep (outbox.py; on a cluster the stream is elsewhere and
-- the caller appends it first).
-- ARGV: stream ('' for none), its approximate maxlen, now in ms, length of "{<prefix>:c:".
-- Returns {'OK', keys deleted} or a diversion.
local stop = diverted()
if stop then return stop end
if ARGV[1] ~= '' and redis.call('EXISTS', MAIN) == 1 then
  local identifiers = {}
  for _, field in ipairs(redis.call('HKEYS', MAIN)) do
    if string.sub(field, 1, 1) == '#' then identifiers[#identifiers + 1] = string.sub(field, 2) end
  end
  table.sort(identifiers)
  local customer_id = string.sub(MAIN, tonumber(ARGV[4]) + 1, -2)
  local body = cjson.encode({customer_id = customer_id, identifiers = identifiers})
  redis.call('XADD', ARGV[1], 'MAXLEN', '~', ARGV[2], '*',
             'erasure', body, 'recorded_ms', ARGV[3])
end
return {'OK', redis.call('DEL', MAIN .. ':w', unpack(KEYS))}
