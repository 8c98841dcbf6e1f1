"""The Redis journal's Lua scripts, each run atomically by the server.

Every write that touches several keys is one script, so that readers never see half of it
(see ``redis/__init__``). Delivery scripts get the key prefix as ``ARGV[1]`` and build the
per-plugin and per-call keys themselves; that is why the journal needs a standalone Redis
(or one shard), not Redis Cluster.
"""

from __future__ import annotations

#: KEYS: counter, dedup hash, stream, the company's events index, the companies set. ARGV:
#: dedup key, received at (us), source, raw, kind, parsed, dedup window (us), company. The
#: hash maps a dedup key to the seq of the *latest* event with that key; a hit costs one more
#: lookup, the stream entry's ``at``: less than the window away from this event's, a repeat;
#: further (or the entry is gone), a new event that takes the key over. A new event is also
#: indexed under its company (``redis/companies.py``).
APPEND_LUA = """
local seq = redis.call('HGET', KEYS[2], ARGV[1])
if seq then
  local found = redis.call('XRANGE', KEYS[3], seq .. '-0', seq .. '-0')
  local entry = found[1]
  if entry then
    local fields = entry[2]
    for i = 1, #fields, 2 do
      if fields[i] == 'at' then
        if math.abs(tonumber(ARGV[2]) - tonumber(fields[i + 1])) < tonumber(ARGV[7]) then
          return {tonumber(seq), 1}
        end
        break
      end
    end
  end
end
local n = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[3], string.format('%d-0', n), 'at', ARGV[2], 'source', ARGV[3],
           'key', ARGV[1], 'raw', ARGV[4], 'kind', ARGV[5], 'parsed', ARGV[6],
           'company', ARGV[8])
redis.call('HSET', KEYS[2], ARGV[1], n)
redis.call('ZADD', KEYS[4], n, n)
redis.call('SADD', KEYS[5], ARGV[8])
return {n, 0}
"""

#: KEYS: counter, stream, companies set, the company's index (a sorted set of ids). ARGV:
#: MAXLEN (0: none), the company ('': none, nothing indexed), then field/value pairs. The
#: index is trimmed with the stream.
STREAM_ADD_LUA = """
local n = redis.call('INCR', KEYS[1])
local args = {'XADD', KEYS[2]}
if ARGV[1] ~= '0' then
  table.insert(args, 'MAXLEN'); table.insert(args, '~'); table.insert(args, ARGV[1])
end
table.insert(args, string.format('%d-0', n))
for i = 3, #ARGV do table.insert(args, ARGV[i]) end
redis.call(unpack(args))
if ARGV[2] ~= '' then
  redis.call('SADD', KEYS[3], ARGV[2])
  redis.call('ZADD', KEYS[4], n, n)
  if ARGV[1] ~= '0' then
    -- ids this far back were trimmed from the stream (MAXLEN ~ keeps a little more)
    redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', n - 2 * tonumber(ARGV[1]))
  end
end
return n
"""

#: KEYS: data hash, all calls zset, open calls zset, settled set, call -> company hash,
#: companies set, the company's calls set. ARGV: key, json, score, settled, company. A
#: call's company is its first save's.
SAVE_CALL_LUA = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if redis.call('HSETNX', KEYS[5], ARGV[1], ARGV[5]) == 1 then
  redis.call('SADD', KEYS[6], ARGV[5])
  redis.call('SADD', KEYS[7], ARGV[1])
end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
if ARGV[4] == '1' or redis.call('SISMEMBER', KEYS[4], ARGV[1]) == 1 then
  redis.call('SADD', KEYS[4], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
else
  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
end
return 1
"""

DELIVERY_PRELUDE = r"""
local p = ARGV[1]
local function dkey(id) return p .. ':delivery:' .. id end
local function member(id) return string.format('%012d', tonumber(id)) end
local function schedule(id, plugin, at)
  local m = member(id)
  if at == '' then
    redis.call('ZREM', p .. ':deliveries:due', m)
    redis.call('ZREM', p .. ':deliveries:due:' .. plugin, m)
  else
    redis.call('ZADD', p .. ':deliveries:due', at, m)
    redis.call('ZADD', p .. ':deliveries:due:' .. plugin, at, m)
  end
end
local function move(id, plugin, old, new)
  if old ~= new then
    if old ~= '' then
      redis.call('ZREM', p .. ':deliveries:state:' .. old, id)
      redis.call('HINCRBY', p .. ':deliveries:counts', plugin .. '\31' .. old, -1)
    end
    redis.call('ZADD', p .. ':deliveries:state:' .. new, id, id)
    redis.call('HINCRBY', p .. ':deliveries:counts', plugin .. '\31' .. new, 1)
  end
  redis.call('HSET', dkey(id), 'state', new)
end
"""

#: ARGV: prefix, call_key, plugin, action, now, payload, company ('': the call's, else
#: ``default``). Returns the delivery's hash.
ENQUEUE_LUA = (
    DELIVERY_PRELUDE
    + r"""
local ik = ARGV[2] .. '\31' .. ARGV[3] .. '\31' .. ARGV[4]
local id = redis.call('HGET', p .. ':deliveries:index', ik)
if not id then
  local c = ARGV[7]
  if c == '' then c = redis.call('HGET', p .. ':calls:company', ARGV[2]) or 'default' end
  id = redis.call('INCR', p .. ':deliveries:seq')
  redis.call('HSET', dkey(id), 'id', id, 'call_key', ARGV[2], 'plugin', ARGV[3],
             'action', ARGV[4], 'attempts', 0, 'created_at', ARGV[5], 'payload', ARGV[6],
             'company', c)
  redis.call('SADD', p .. ':co:' .. c .. ':deliveries', id)
  redis.call('SADD', p .. ':companies', c)
  redis.call('HSET', p .. ':deliveries:index', ik, id)
  redis.call('ZADD', p .. ':deliveries:all', id, id)
  redis.call('SADD', p .. ':deliveries:call:' .. ARGV[2], id)
  redis.call('HSET', dkey(id), 'next_at', ARGV[5])
  schedule(id, ARGV[3], ARGV[5])
  move(id, ARGV[3], '', 'pending')
end
return redis.call('HGETALL', dkey(id))
"""
)

#: ARGV: prefix, id, result json ('' for none).
COMPLETE_LUA = (
    DELIVERY_PRELUDE
    + """
local id = ARGV[2]
local st = redis.call('HMGET', dkey(id), 'state', 'plugin')
if not st[1] or st[1] == 'done' then return 0 end
redis.call('HINCRBY', dkey(id), 'attempts', 1)
redis.call('HDEL', dkey(id), 'next_at')
if ARGV[3] == '' then redis.call('HDEL', dkey(id), 'result')
else redis.call('HSET', dkey(id), 'result', ARGV[3]) end
schedule(id, st[2], '')
move(id, st[2], st[1], 'done')
return 1
"""
)

#: ARGV: prefix, id, error, next attempt ('' makes it dead).
FAIL_LUA = (
    DELIVERY_PRELUDE
    + """
local id = ARGV[2]
local st = redis.call('HMGET', dkey(id), 'state', 'plugin')
if st[1] ~= 'pending' then return 0 end
redis.call('HINCRBY', dkey(id), 'attempts', 1)
redis.call('HSET', dkey(id), 'last_error', ARGV[3])
if ARGV[4] == '' then
  redis.call('HDEL', dkey(id), 'next_at')
  schedule(id, st[2], '')
  move(id, st[2], 'pending', 'dead')
else
  redis.call('HSET', dkey(id), 'next_at', ARGV[4])
  schedule(id, st[2], ARGV[4])
end
return 1
"""
)

#: ARGV: prefix, id, now.
RETRY_LUA = (
    DELIVERY_PRELUDE
    + """
local id = ARGV[2]
local st = redis.call('HMGET', dkey(id), 'state', 'plugin')
if st[1] ~= 'dead' then return 0 end
redis.call('HSET', dkey(id), 'attempts', 0, 'next_at', ARGV[3], 'retried_at', ARGV[3])
schedule(id, st[2], ARGV[3])
move(id, st[2], 'dead', 'pending')
return 1
"""
)

#: ARGV: prefix, id, at. A pending delivery's next attempt moves; its attempts do not.
RESCHEDULE_LUA = (
    DELIVERY_PRELUDE
    + """
local id = ARGV[2]
local st = redis.call('HMGET', dkey(id), 'state', 'plugin')
if st[1] ~= 'pending' then return 0 end
redis.call('HSET', dkey(id), 'next_at', ARGV[3])
schedule(id, st[2], ARGV[3])
return 1
"""
)

#: KEYS: stream, dedup hash. ARGV: number of ids n, ids x n, then (dedup key, seq) pairs.
#: A dedup key is dropped only while it still names the pruned event (a newer event with
#: the same key owns it otherwise); one script, so an append never sees half of it.
PRUNE_STREAM_LUA = """
local n = tonumber(ARGV[1])
for i = n + 2, #ARGV, 2 do
  if redis.call('HGET', KEYS[2], ARGV[i]) == ARGV[i + 1] then
redis.call('HDEL', KEYS[2], ARGV[i])
  end
end
local deleted = 0
for i = 2, n + 1 do deleted = deleted + redis.call('XDEL', KEYS[1], ARGV[i]) end
return deleted
"""

#: Deletes delivery ``id`` whose fields ``f`` (state, plugin, call_key, action, company) were
#: read, with every index that names it.
DELIVERY_DROP = r"""
local function drop(p, id, f)
  local st = f[1]
  redis.call('DEL', p .. ':delivery:' .. id)
  redis.call('HDEL', p .. ':deliveries:index', f[3] .. '\31' .. f[2] .. '\31' .. f[4])
  redis.call('ZREM', p .. ':deliveries:all', id)
  redis.call('SREM', p .. ':deliveries:call:' .. f[3], id)
  redis.call('ZREM', p .. ':deliveries:state:' .. st, id)
  redis.call('HINCRBY', p .. ':deliveries:counts', f[2] .. '\31' .. st, -1)
  redis.call('SREM', p .. ':co:' .. (f[5] or 'default') .. ':deliveries', id)
  local m = string.format('%012d', tonumber(id))
  redis.call('ZREM', p .. ':deliveries:due', m)
  redis.call('ZREM', p .. ':deliveries:due:' .. f[2], m)
end
"""

_DROP_FIELDS = "'state', 'plugin', 'call_key', 'action', 'company'"

#: ARGV: prefix, cutoff (us), ids. Deletes each delivery that is still done or dead and
#: older than the cutoff, with every index that names it; returns how many.
PRUNE_DELIVERIES_LUA = (
    DELIVERY_DROP
    + f"""
local p = ARGV[1]
local cutoff = tonumber(ARGV[2])
local n = 0
for i = 3, #ARGV do
  local id = ARGV[i]
  local f = redis.call('HMGET', p .. ':delivery:' .. id, {_DROP_FIELDS}, 'created_at',
                       'retried_at')
  local at = tonumber(f[7] or f[6])
  if (f[1] == 'done' or f[1] == 'dead') and at and at < cutoff then
    drop(p, id, f)
    n = n + 1
  end
end
return n
"""
)

#: ARGV: prefix, company, ids. Deletes each delivery of that company, whatever its state.
PURGE_DELIVERIES_LUA = (
    DELIVERY_DROP
    + f"""
local p = ARGV[1]
local n = 0
for i = 3, #ARGV do
  local id = ARGV[i]
  local f = redis.call('HMGET', p .. ':delivery:' .. id, {_DROP_FIELDS})
  if f[1] and (f[5] or 'default') == ARGV[2] then
    drop(p, id, f)
    n = n + 1
  end
end
redis.call('SREM', p .. ':co:' .. ARGV[2] .. ':deliveries', unpack(ARGV, 3))
return n
"""
)

#: An agent message (``STREAM_ADD_LUA`` without trimming), its company's index and its
#: doorbell, in one step. KEYS: counter, the agent's stream, the bell channel, the companies
#: set, the company's set of agents. ARGV: the stream's name in the bell (``201``,
#: ``201@acme``), the company, the extension, then field/value pairs.
#: Publishing inside the script means no bell rings for a message that was not stored, and
#: none is missing for one that was (unless the listener was disconnected: see ``bells.py``).
AGENT_ADD_LUA = """
local n = redis.call('INCR', KEYS[1])
local args = {'XADD', KEYS[2], string.format('%d-0', n)}
for i = 4, #ARGV do table.insert(args, ARGV[i]) end
redis.call(unpack(args))
redis.call('SADD', KEYS[4], ARGV[2])
redis.call('SADD', KEYS[5], ARGV[3])
redis.call('PUBLISH', KEYS[3], ARGV[1] .. ' ' .. n)
return n
"""
