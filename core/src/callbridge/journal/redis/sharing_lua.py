"""Lua scripts of the shared Redis journal (``sharing.py``), each run atomically.

Times are the server's own (``TIME``), so the workers' clocks never matter. Redis 7 replicates
a script's effects, not the script, so reading ``TIME`` before writing is allowed.
"""

from __future__ import annotations

#: ARGV: prefix, worker, ttl ms, partitions, offset, then delivery ids to renew.
#: The worker's heartbeat (sorted set ``workers``: id -> expiry), its leases renewed, free
#: partitions taken (from ``offset`` on, so that workers spread) up to the fair share.
#: Returns {fair, live, owned partitions...}.
BEAT_LUA = r"""
local p, me, ttl, n = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', p .. ':workers', now + ttl, me)
redis.call('ZREMRANGEBYSCORE', p .. ':workers', '-inf', now)
local live = redis.call('ZCARD', p .. ':workers')
local fair = math.ceil(n / live)
local owned, free = {}, {}
for i = 0, n - 1 do
  local k = p .. ':lease:' .. i
  local v = redis.call('GET', k)
  if v == me then
    redis.call('PEXPIRE', k, ttl)
    table.insert(owned, i)
  elseif not v then
    table.insert(free, i)
  end
end
local offset = tonumber(ARGV[5])
local first = 1
for j = 1, #free do
  if free[j] >= offset then first = j break end
end
for j = 0, #free - 1 do
  if #owned >= fair then break end
  local i = free[((first - 1 + j) % #free) + 1]
  redis.call('SET', p .. ':lease:' .. i, me, 'PX', ttl)
  table.insert(owned, i)
end
for j = 6, #ARGV do
  local k = p .. ':deliveries:lease:' .. ARGV[j]
  if redis.call('GET', k) == me then redis.call('PEXPIRE', k, ttl) end
end
local reply = {fair, live}
for _, i in ipairs(owned) do table.insert(reply, i) end
return reply
"""

#: ARGV: prefix, worker, partitions, then (partition, cursor) pairs. Saves the cursors of
#: partitions the worker holds, then the plain ``dispatcher`` cursor as the lowest of all
#: partitions' (what pruning and the single-engine tools read). Returns how many were saved.
SAVE_CURSORS_LUA = r"""
local p, me, n = ARGV[1], ARGV[2], tonumber(ARGV[3])
local saved = 0
for j = 4, #ARGV, 2 do
  if redis.call('GET', p .. ':lease:' .. ARGV[j]) == me then
    redis.call('HSET', p .. ':cursors', 'dispatcher:p' .. ARGV[j], ARGV[j + 1])
    saved = saved + 1
  end
end
local low = nil
for i = 0, n - 1 do
  local v = redis.call('HGET', p .. ':cursors', 'dispatcher:p' .. i)
  if not v then return saved end
  v = tonumber(v)
  if low == nil or v < low then low = v end
end
if low ~= nil then redis.call('HSET', p .. ':cursors', 'dispatcher', low) end
return saved
"""

#: ARGV: prefix, worker, partition, cursor. Saves the cursor and drops the lease, only while
#: the worker holds it. Returns 1 when released.
RELEASE_LUA = r"""
local k = ARGV[1] .. ':lease:' .. ARGV[3]
if redis.call('GET', k) ~= ARGV[2] then return 0 end
redis.call('HSET', ARGV[1] .. ':cursors', 'dispatcher:p' .. ARGV[3], ARGV[4])
redis.call('DEL', k)
return 1
"""

#: ARGV: prefix, worker, delivery id, attempts seen, now (us), ttl ms. A claim is taken only
#: while the delivery is still pending, due, and as it was read (same attempts).
CLAIM_DELIVERY_LUA = r"""
local p = ARGV[1]
local f = redis.call('HMGET', p .. ':delivery:' .. ARGV[3], 'state', 'attempts', 'next_at')
if f[1] ~= 'pending' or f[2] ~= ARGV[4] then return 0 end
if f[3] and tonumber(f[3]) > tonumber(ARGV[5]) then return 0 end
if redis.call('SET', p .. ':deliveries:lease:' .. ARGV[3], ARGV[2], 'NX', 'PX', ARGV[6]) then
  return 1
end
return 0
"""

#: KEYS: a lease key. ARGV: worker. Deletes the key only while the worker holds it.
DROP_LEASE_LUA = r"""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
