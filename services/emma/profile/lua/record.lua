-- Applies one customer's events of a batch atomically; idempotent per event id.
-- ARGV[1]: JSON {ids, seen, u}, what differs per customer (parsing JSON is what costs most
-- here, so it carries no more than that):
--   ids   identifier fields of the refs the events named
--   seen  the events' id hashes; their updates are folded into one set u:
--   u.t   the batch's latest event time (future times count as now)
--   u.d   field, weight, ...: decayed weights summed relative to u.t, in millionths
--   u.m   field, time, ...: keep the latest time;  u.i field, amount, ...: add to a counter
--   u.o   offer, shown, clicked, redeemed, dismissed, dismissal weight, ... (times or 0)
--   u.l   kind, time, store, ...: life events
-- (flat lists: every nested list would be one more table for Lua to build)
-- ARGV[2..]: now, TTL, event-id set TTL, refresh period, half-life (seconds), stored units
-- per weight unit, most life events, caps ("p20c16s4o16": most entries per family).
-- Returns {'OK', accepted, duplicates, identifiers due for a TTL refresh}, a diversion,
-- or {'PARTIAL', positions in `seen` applied before}: then nothing was written and the
-- caller folds the rest anew (updates folded over a replayed event would count it twice).
--
-- Decayed values use forward decay: a weight w observed at time t is stored as
-- round(w * scale * 2^((t - E) / hl)) relative to the record's landmark E, so sums are
-- order-independent and reading at `now` multiplies by 2^(-(now - E) / hl). E moves up
-- to now (every stored value rescaled) once now is more than a half-life past it.
local args = cjson.decode(ARGV[1])
local u = args.u
local now, ttl, seen_ttl, refresh = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local hl, scale, max_life = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])

-- Only the fields the batch touches are read, unless a cap or a rebase needs more.
local wanted = {'X', 'Y', 'E', 'U', 'G', 'H', 'T', 'Q'}
for _, field in ipairs(args.ids) do wanted[#wanted + 1] = field end
if #args.seen > 0 then
  for _, family in ipairs({u.d, u.m, u.i}) do
    for i = 1, #family, 2 do wanted[#wanted + 1] = family[i] end
  end
  for i = 1, #u.o, 6 do wanted[#wanted + 1] = 'o' .. u.o[i] end
end
local values = sliced('HMGET', MAIN, wanted)
if values[1] then return {'X', values[1]} end
if values[2] then return {'Y', values[2]} end

local accepted, duplicates = #args.seen, 0
if accepted > 0 then
  local in_prev = sliced('SMISMEMBER', SEEN_PREV, args.seen)
  local in_cur = sliced('SMISMEMBER', SEEN, args.seen)
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
-- Q counts the entries of the capped families ("p20c16s3o5"), so one below its cap takes
-- a newcomer without a scan. A record written before Q existed is counted by scanning.
local caps = {}
for letter, cap in string.gmatch(ARGV[9], '(%a)(%d+)') do caps[string.byte(letter)] = tonumber(cap) end
local counts, counted, recount = {}, m.Q ~= nil or m.U == nil, false
if m.Q then
  for letter, n in string.gmatch(m.Q, '(%a)(%d+)') do counts[string.byte(letter)] = tonumber(n) end
end

local function drop(field)
  m[field] = nil
  dirty[field] = nil
  gone[field] = true
  local byte = string.byte(field)
  local set = members[byte]
  if set then set[field] = nil end
  if caps[byte] and counts[byte] then
    counts[byte] = counts[byte] - 1
    recount = true
  end
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
  counts, counted, recount = {}, true, true
  for field in pairs(m) do
    local byte = string.byte(field)
    if caps[byte] and #field > 1 then counts[byte] = (counts[byte] or 0) + 1 end
  end
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

local function count_of(byte, field)
  if counts[byte] == nil then
    local n = 0
    if not counted then
      for _ in pairs(family(field)) do n = n + 1 end
    end
    counts[byte] = n
  end
  return counts[byte]
end

-- A newcomer to a capped family takes the weakest entry's place, if it is stronger.
local function room_for(field, strength, value_of)
  if m[field] then return true end
  local byte = string.byte(field)
  local cap = caps[byte]
  if not cap then return true end
  if count_of(byte, field) >= cap then
    local victim, least = nil, nil
    for name in pairs(family(field)) do
      local v = value_of(m[name])
      if least == nil or v < least then victim, least = name, v end
    end
    if least >= strength then return false end
    drop(victim)
  end
  counts[byte] = counts[byte] + 1
  recount = true
  local set = members[byte]
  if set then set[field] = true end
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
  for i = 1, math.min(#parsed, max_life) do
    local e = parsed[i]
    redis.call('RPUSH', LIFE, e.k .. '|' .. int(e.t) .. '|' .. e.s)
  end
  redis.call('EXPIRE', LIFE, ttl)
  if kind == 'moved' and store ~= '' and ((not m.T) or tonumber(m.T) <= t) then
    put('H', store)
    put('T', int(t))
  end
end

if accepted > 0 then
  -- The landmark follows the clock, not the events: a bulk load of old events in any
  -- order moves it at most once per half-life, and stored values stay small integers.
  if not E then
    E = math.floor(now)
    put('E', int(E))
  elseif now - E > hl then
    rebase(math.floor(now))
  end
  -- Batch weights are relative to u.t; one factor moves them to the landmark.
  local factor = scale * 2 ^ ((u.t - E) / hl)
  local d = u.d
  for i = 1, #d, 2 do
    local field = d[i]
    local q = math.floor(d[i + 1] * factor + 0.5)
    if q ~= 0 and room_for(field, q, tonumber) then
      local total = tonumber(m[field] or '0') + q
      if total == 0 then drop(field) else put(field, int(total)) end
    end
  end
  local latest = u.m
  for i = 1, #latest, 2 do
    local field, t = latest[i], math.floor(latest[i + 1])
    if (not m[field]) or tonumber(m[field]) < t then put(field, int(t)) end
  end
  local counters = u.i
  for i = 1, #counters, 2 do
    put(counters[i], int(tonumber(m[counters[i]] or '0') + counters[i + 1]))
  end
  local o = u.o
  for i = 1, #o, 6 do
    local field = 'o' .. o[i]
    local recency = math.max(o[i + 1], o[i + 2], o[i + 3], o[i + 4])
    if room_for(field, recency, offer_recency) then
      local rec = m[field] and offer_rec(m[field]) or {0, 0, 0, 0, 0}
      for k = 1, 4 do rec[k] = math.max(rec[k], o[i + k]) end
      rec[5] = rec[5] + math.floor(o[i + 5] * factor + 0.5)
      put(field, offer_text(rec))
    end
  end
  local l = u.l
  for i = 1, #l, 3 do life(l[i], l[i + 1], l[i + 2]) end
  sliced('SADD', SEEN, args.seen)
  redis.call('EXPIRE', SEEN, seen_ttl)
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
  first_today = (not last) or math.floor(tonumber(last) / refresh) ~= math.floor(now / refresh)
  put('U', int(now))
  put('G', int(tonumber(m.G or '0') + 1))
end

if recount then
  local parts = {}
  for letter in string.gmatch(ARGV[9], '(%a)%d+') do
    local n = count_of(string.byte(letter), letter)
    if n and n > 0 then parts[#parts + 1] = letter .. int(n) end
  end
  if #parts > 0 then put('Q', table.concat(parts)) elseif m.Q then drop('Q') end
end

local flat = {}
for field in pairs(dirty) do
  flat[#flat + 1] = field
  flat[#flat + 1] = m[field]
end
sliced('HSET', MAIN, flat)
local removed = {}
for field in pairs(gone) do removed[#removed + 1] = field end
sliced('HDEL', MAIN, removed)

-- The record's TTL restarts with every write; the other keys' (and the identifiers'
-- redirect records') with the day's first write, or when they are written themselves.
local due = {}
if changed then
  redis.call('EXPIRE', MAIN, ttl)
  if first_today then
    for _, key in ipairs(DATA_KEYS) do redis.call('EXPIRE', key, ttl) end
    for _, field in ipairs(redis.call('HKEYS', MAIN)) do
      if string.sub(field, 1, 1) == '#' then due[#due + 1] = field end
    end
  end
end
return {'OK', accepted, duplicates, due}
