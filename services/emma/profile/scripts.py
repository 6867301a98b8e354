"""Lua scripts that change one customer's keys atomically (all KEYS share one hash slot)."""

from __future__ import annotations

# KEYS: CustomerKeys.all() in order: profile, ids, cat, prod, stores, chan, hours, seen, ...
# ARGV[1]: JSON {cid, now, ttl, hl, max_life, ids: [...], events: [{id, ops: [...]}]}.
# Applies each event not seen before; returns {accepted, duplicates, identifiers}.
# The decay maths must stay equal to aggregates.Decayed.add (tests compare the two).
RECORD_EVENTS = r"""
local args = cjson.decode(ARGV[1])
local hl = args.hl
local part = {profile = KEYS[1], cat = KEYS[3], prod = KEYS[4], stores = KEYS[5],
              chan = KEYS[6], hours = KEYS[7]}

local function fmt(x) return string.format('%.17g', x) end

local function decayed_add(key, field, weights, t)
  local raw = redis.call('HGET', key, field)
  local at, values = t, {}
  if raw then
    local parts = {}
    for p in string.gmatch(raw, '[^|]+') do parts[#parts + 1] = tonumber(p) end
    at = parts[1]
    for i = 2, #parts do values[i - 1] = parts[i] end
  end
  local out = {fmt(math.max(at, t))}
  for i, w in ipairs(weights) do
    local v = values[i] or 0
    if t >= at then
      v = v * (0.5 ^ ((t - at) / hl)) + w
    else
      v = v + w * (0.5 ^ ((at - t) / hl))
    end
    out[#out + 1] = fmt(v)
  end
  redis.call('HSET', key, field, table.concat(out, '|'))
end

local function keep_max(key, field, t)
  local current = redis.call('HGET', key, field)
  if (not current) or tonumber(current) < t then redis.call('HSET', key, field, fmt(t)) end
end

local function life(kind, t, store)
  local raw = redis.call('HGET', KEYS[1], 'life_events')
  local list = {}
  if raw then list = cjson.decode(raw) end
  for _, e in ipairs(list) do
    if e.k == kind and math.abs(e.t - t) < 0.001 then return end
  end
  table.insert(list, {k = kind, t = t, s = store})
  table.sort(list, function(a, b) return a.t > b.t end)
  while #list > args.max_life do table.remove(list) end
  redis.call('HSET', KEYS[1], 'life_events', cjson.encode(list))
  if kind == 'moved' and store ~= '' then
    local at = redis.call('HGET', KEYS[1], 'home_store_at')
    if (not at) or tonumber(at) <= t then
      redis.call('HSET', KEYS[1], 'home_store', store, 'home_store_at', fmt(t))
    end
  end
end

local known = {dec = true, max = true, rfm = true, life = true}
for _, event in ipairs(args.events) do
  for _, op in ipairs(event.ops) do
    -- Checked before any write: a script that fails halfway keeps its earlier writes.
    if not known[op[1]] then
      return redis.error_reply('unknown aggregate operation ' .. tostring(op[1]))
    end
  end
end

local accepted, duplicates = 0, 0
for _, event in ipairs(args.events) do
  if redis.call('SADD', KEYS[8], event.id) == 0 then
    duplicates = duplicates + 1
  else
    accepted = accepted + 1
    for _, op in ipairs(event.ops) do
      local kind = op[1]
      if kind == 'dec' then
        decayed_add(part[op[2]], op[3], op[4], op[5])
      elseif kind == 'max' then
        keep_max(part[op[2]], op[3], op[4])
      elseif kind == 'rfm' then
        keep_max(KEYS[1], 'last_purchase_at', op[2])
        redis.call('HINCRBY', KEYS[1], 'purchase_count', 1)
        redis.call('HINCRBYFLOAT', KEYS[1], 'total_spend', fmt(op[3]))
      else
        life(op[2], op[3], op[4])
      end
    end
  end
end

local linked = 0
for _, id in ipairs(args.ids) do linked = linked + redis.call('SADD', KEYS[2], id) end
-- A replayed batch changes nothing: no new timestamps, no TTL extension.
if accepted > 0 or linked > 0 then
  redis.call('HSETNX', KEYS[1], 'customer_id', args.cid)
  redis.call('HSETNX', KEYS[1], 'created_at', fmt(args.now))
  redis.call('HSET', KEYS[1], 'updated_at', fmt(args.now))
  for i = 1, #KEYS do redis.call('EXPIRE', KEYS[i], args.ttl) end
end
return {accepted, duplicates, redis.call('SMEMBERS', KEYS[2])}
"""

# KEYS[1]: an identifier index key; ARGV[1]: the customer id it must still point to.
DELETE_IF_OWNED = r"""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
