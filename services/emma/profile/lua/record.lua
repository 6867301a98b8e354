-- Applies one customer's events of a batch atomically; idempotent per event id.
-- ARGV[1]: JSON {now, ttl, sttl, refresh, hl, scale, life, caps, ids, f, seen, u}:
--   ids   identifier fields of the refs the events named
--   f     the record fields the updates touch (read with one HMGET)
--   seen  the events' id hashes; their updates are folded into one set u:
--   u.t   the batch's latest event time (future times count as now)
--   u.d   {{field, weight}}: decayed weights summed relative to u.t
--   u.m   {{field, time}}: keep the latest time;  u.i {{field, amount}}: add to a counter
--   u.o   {{offer, shown, clicked, redeemed, dismissed, dismissal weight}} (times or 0)
--   u.l   {{kind, time, store}}: life events
-- Returns {'OK', accepted, duplicates, identifiers due for a TTL refresh}, a diversion,
-- or {'PARTIAL', positions in `seen` applied before}: then nothing was written and the
-- caller folds the rest anew (updates folded over a replayed event would count it twice).
--
-- Decayed values use forward decay: a weight w observed at time t is stored as
-- round(w * scale * 2^((t - E) / hl)) relative to the record's landmark E, so sums are
-- order-independent and reading at `now` multiplies by 2^(-(now - E) / hl). E moves up
-- (every stored value rescaled) once an event is more than a half-life past it.
local args = cjson.decode(ARGV[1])
local now, hl, scale, u = args.now, args.hl, args.scale, args.u

-- Only the fields the batch touches are read, unless a cap or a rebase needs them all.
local wanted = {'X', 'Y', 'E', 'U', 'G', 'H', 'T'}
for _, field in ipairs(args.f) do wanted[#wanted + 1] = field end
local values = redis.call('HMGET', MAIN, unpack(wanted))
if values[1] then return {'X', values[1]} end
if values[2] then return {'Y', values[2]} end

local accepted, duplicates = #args.seen, 0
if accepted > 0 then
  local in_prev = redis.call('SMISMEMBER', SEEN_PREV, unpack(args.seen))
  local in_cur = redis.call('SMISMEMBER', SEEN, unpack(args.seen))
  local known = {}
  for i = 1, accepted do
    if in_prev[i] == 1 or in_cur[i] == 1 then known[#known + 1] = i end
  end
  if #known == accepted then return {'OK', 0, accepted, {}} end
  if #known > 0 then return {'PARTIAL', known} end
end

local m = {}
for i, field in ipairs(wanted) do
  if values[i] then m[field] = values[i] end
end
local dirty, gone = {}, {}
-- Family letter (as a byte) -> the family's fields, for capped families, read on demand.
local members = {}
local function put(field, value) m[field] = value; dirty[field] = true; gone[field] = nil end
local function drop(field)
  m[field] = nil
  dirty[field] = nil
  gone[field] = true
  local set = members[string.byte(field)]
  if set then set[field] = nil end
end

-- Every field, for a rebase (rare: once a half-life).
local loaded = false
local function load_all()
  if loaded then return end
  loaded = true
  local flat = redis.call('HGETALL', MAIN)
  for i = 1, #flat, 2 do
    local field = flat[i]
    if m[field] == nil and not gone[field] then m[field] = flat[i + 1] end
  end
end

-- The fields of one family: HSCAN matches in C, so only they reach the script.
local function family(field)
  local byte = string.byte(field)
  local set = members[byte]
  if set then return set end
  set = {}
  local cursor = '0'
  repeat
    local reply = redis.call('HSCAN', MAIN, cursor, 'MATCH', string.sub(field, 1, 1) .. '*', 'COUNT', 1000)
    cursor = reply[1]
    local flat = reply[2]
    for i = 1, #flat, 2 do
      local name = flat[i]
      if not gone[name] then
        set[name] = true
        if m[name] == nil then m[name] = flat[i + 1] end
      end
    end
  until cursor == '0'
  for name in pairs(dirty) do
    if string.byte(name) == byte then set[name] = true end
  end
  members[byte] = set
  return set
end

-- An offer's record: "<shown>,<clicked>,<redeemed>,<dismissed>,<dismissals>", 0 left out.
local function offer_rec(value)
  local rec = {}
  for part in string.gmatch(value .. ',', '([^,]*),') do rec[#rec + 1] = tonumber(part) or 0 end
  return rec
end

local function offer_text(rec)
  local parts = {}
  for i = 1, 5 do parts[i] = rec[i] == 0 and '' or int(rec[i]) end
  return table.concat(parts, ',')
end

local DECAYED = {c = true, p = true, s = true, h = true, n = true, r = true}
local E = tonumber(m.E)
local function rebase(new_e)
  load_all()
  local factor = 2 ^ ((E - new_e) / hl)
  for field, value in pairs(m) do
    local family = string.sub(field, 1, 1)
    if (DECAYED[family] and #field > 1) or field == 'S' or field == 'W' then
      local q = math.floor(tonumber(value) * factor + 0.5)
      if q == 0 then drop(field) else put(field, int(q)) end
    elseif family == 'o' then
      local rec = offer_rec(value)
      rec[5] = math.floor(rec[5] * factor + 0.5)
      put(field, offer_text(rec))
    end
  end
  E = new_e
  put('E', int(E))
end

-- Family letter (as a byte) -> most entries; a newcomer takes the weakest one's place.
local caps = {}
for letter, cap in pairs(args.caps) do caps[string.byte(letter)] = cap end

local function room_for(field, strength, value_of)
  if m[field] then return true end
  local cap = caps[string.byte(field)]
  if not cap then return true end
  local set = family(field)
  local count, victim, least = 0, nil, nil
  for name in pairs(set) do
    count = count + 1
    local v = value_of(m[name])
    if least == nil or v < least then victim, least = name, v end
  end
  if count >= cap then
    if least >= strength then return false end
    drop(victim)
  end
  set[field] = true
  return true
end

local function offer_recency(value)
  local rec = offer_rec(value)
  return math.max(rec[1], rec[2], rec[3], rec[4])
end

local function life(kind, t, store)
  t = math.floor(t)
  local parsed = {}
  for _, entry in ipairs(redis.call('LRANGE', LIFE, 0, -1)) do
    local k, et, s = string.match(entry, '^([^|]*)|([^|]*)|(.*)$')
    if k == kind and tonumber(et) == t then return end
    parsed[#parsed + 1] = {k = k, t = tonumber(et), s = s}
  end
  parsed[#parsed + 1] = {k = kind, t = t, s = store}
  table.sort(parsed, function(a, b) return a.t > b.t end)
  redis.call('DEL', LIFE)
  for i = 1, math.min(#parsed, args.life) do
    local e = parsed[i]
    redis.call('RPUSH', LIFE, e.k .. '|' .. int(e.t) .. '|' .. e.s)
  end
  redis.call('EXPIRE', LIFE, args.ttl)
  if kind == 'moved' and store ~= '' and ((not m.T) or tonumber(m.T) <= t) then
    put('H', store)
    put('T', int(t))
  end
end

if accepted > 0 then
  if not E then
    E = math.floor(u.t)
    put('E', int(E))
  elseif u.t - E > hl then
    rebase(math.floor(u.t))
  end
  -- Batch weights are relative to u.t; one factor moves them to the landmark.
  local factor = scale * 2 ^ ((u.t - E) / hl)
  for _, pair in ipairs(u.d) do
    local field = pair[1]
    local q = math.floor(pair[2] * factor + 0.5)
    if q ~= 0 and room_for(field, q, tonumber) then
      local total = tonumber(m[field] or '0') + q
      if total == 0 then drop(field) else put(field, int(total)) end
    end
  end
  for _, pair in ipairs(u.m) do
    local t = math.floor(pair[2])
    if (not m[pair[1]]) or tonumber(m[pair[1]]) < t then put(pair[1], int(t)) end
  end
  for _, pair in ipairs(u.i) do put(pair[1], int(tonumber(m[pair[1]] or '0') + pair[2])) end
  for _, o in ipairs(u.o) do
    local field = 'o' .. o[1]
    local recency = math.floor(math.max(o[2], o[3], o[4], o[5]))
    if room_for(field, recency, offer_recency) then
      local rec = m[field] and offer_rec(m[field]) or {0, 0, 0, 0, 0}
      for k = 1, 4 do rec[k] = math.max(rec[k], math.floor(o[k + 1])) end
      rec[5] = rec[5] + math.floor(o[6] * factor + 0.5)
      put(field, offer_text(rec))
    end
  end
  for _, l in ipairs(u.l) do life(l[1], l[2], l[3]) end
  redis.call('SADD', SEEN, unpack(args.seen))
  redis.call('EXPIRE', SEEN, args.sttl)
end

local linked = 0
for _, field in ipairs(args.ids) do
  if not m[field] then
    put(field, '1')
    linked = linked + 1
  end
end

-- A replayed batch changes nothing: no new timestamps, no TTL extension.
local changed = accepted > 0 or linked > 0
local first_today = false
if changed then
  local last = m.U
  if not last then put('C', int(now)) end
  first_today = (not last) or math.floor(tonumber(last) / args.refresh) ~= math.floor(now / args.refresh)
  put('U', int(now))
  put('G', int(tonumber(m.G or '0') + 1))
end

local flat = {}
for field in pairs(dirty) do
  flat[#flat + 1] = field
  flat[#flat + 1] = m[field]
end
if #flat > 0 then redis.call('HSET', MAIN, unpack(flat)) end
local removed = {}
for field in pairs(gone) do removed[#removed + 1] = field end
if #removed > 0 then redis.call('HDEL', MAIN, unpack(removed)) end

-- The record's TTL restarts with every write; the other keys' (and the identifiers'
-- redirect records') with the day's first write, or when they are written themselves.
local due = {}
if changed then
  redis.call('EXPIRE', MAIN, args.ttl)
  if first_today then
    for _, key in ipairs(DATA_KEYS) do redis.call('EXPIRE', key, args.ttl) end
    for _, field in ipairs(redis.call('HKEYS', MAIN)) do
      if string.sub(field, 1, 1) == '#' then due[#due + 1] = field end
    end
  end
end
return {'OK', accepted, duplicates, due}
