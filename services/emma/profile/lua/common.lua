-- Shared by every customer script; prepended to each by scripts.py.
-- KEYS: the customer's record, consent, ledger, preferences, life events, and the
-- event-id sets of the current and the previous replay window (keys.py, same slot).
local MAIN, CONSENT, LEDGER, PREFS, LIFE, SEEN, SEEN_PREV =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local DATA_KEYS = {KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]}

-- A record that redirects (X: merged or linked elsewhere) or is frozen by a merge in
-- progress (Y: "<target>|<started>") must not be written; the caller follows it.
local function diverted()
  local marks = redis.call('HMGET', MAIN, 'X', 'Y')
  if marks[1] then return {'X', marks[1]} end
  if marks[2] then return {'Y', marks[2]} end
  return nil
end

local function int(x) return string.format('%d', x) end

-- A command over a long argument list, in slices (Lua's unpack has a limit); the slices'
-- replies are joined. Slices hold an even number of arguments, so field-value pairs stay whole.
local SLICE = 1000
local function sliced(command, key, items)
  local out = {}
  for first = 1, #items, SLICE do
    local reply = redis.call(command, key, unpack(items, first, math.min(first + SLICE - 1, #items)))
    if type(reply) == 'table' then
      for _, value in ipairs(reply) do out[#out + 1] = value end
    end
  end
  return out
end

local function hash_table(key)
  local flat = redis.call('HGETALL', key)
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end

-- Every write ends here: created/updated times, the version G, the TTL of every data
-- key. Returns the identifier fields whose redirect records (in other slots) are due for
-- a TTL refresh: on the first write of each `refresh_s` period (a day).
local function finish_write(now, ttl, refresh_s)
  local last = redis.call('HGET', MAIN, 'U')
  if not last then redis.call('HSETNX', MAIN, 'C', int(now)) end
  redis.call('HSET', MAIN, 'U', int(now))
  redis.call('HINCRBY', MAIN, 'G', 1)
  for _, key in ipairs(DATA_KEYS) do redis.call('EXPIRE', key, ttl) end
  local due = {}
  if refresh_s == 0 or not last or math.floor(tonumber(last) / refresh_s) ~= math.floor(now / refresh_s) then
    for _, field in ipairs(redis.call('HKEYS', MAIN)) do
      if string.sub(field, 1, 1) == '#' then due[#due + 1] = field end
    end
  end
  return due
end

local function add_identifiers(fields)
  local added = 0
  for _, field in ipairs(fields) do added = added + redis.call('HSETNX', MAIN, field, '1') end
  return added
end

-- The offer wallet (wallet.py): a hash beside the record, MAIN .. ':w' (same hash tag).
-- Applies ops {op, decision event id, offer id, channel, time, expires} with op 'open' (a
-- delivery) or 'redeem'; both are idempotent and commute (either order leaves the same
-- entry), so a replayed delivery never reopens a redeemed offer. Then prunes the entries a grace period past their expiry or
-- closing (one an op just wrote too, so nothing expired comes back) and keeps the key until
-- the last grace ends.
local function wallet_fields(value)
  local out = {}
  for part in string.gmatch(value .. '|', '([^|]*)|') do out[#out + 1] = part end
  return out
end

local function wallet_apply(key, now, grace, ops)
  local function entry(...) return table.concat({...}, '|') end
  for _, op in ipairs(ops) do
    local kind, event, offer, channel, t, expires = op[1], op[2], op[3], op[4], op[5], op[6]
    local old = redis.call('HGET', key, event)
    if kind == 'open' then
      if not old then
        redis.call('HSET', key, event, entry('o', offer, channel, t, expires, 0))
      else
        local f = wallet_fields(old)
        if f[1] == 'r' and (tonumber(f[4]) or 0) == 0 then
          -- Redeemed before its delivery was seen: the delivery adds what it knows, so both
          -- orders leave the same entry (and it is kept until its expiry's grace ends).
          redis.call('HSET', key, event, entry('r', offer, channel, t, expires, f[6]))
        end
      end
    elseif kind == 'redeem' then
      if not old then
        redis.call('HSET', key, event, entry('r', offer, channel, 0, 0, t))
      else
        local f = wallet_fields(old)
        if f[1] == 'o' then
          redis.call('HSET', key, event, entry('r', f[2], f[3], f[4], f[5], t))
        end
      end
    end
  end
  local flat = redis.call('HGETALL', key)
  local last = 0
  for i = 1, #flat, 2 do
    local f = wallet_fields(flat[i + 1])
    local ends = math.max(tonumber(f[5]) or 0, tonumber(f[6]) or 0)
    if ends + grace < now then
      redis.call('HDEL', key, flat[i])
    elseif ends > last then
      last = ends
    end
  end
  if last > 0 then redis.call('EXPIREAT', key, math.floor(last + grace) + 1) end
end
