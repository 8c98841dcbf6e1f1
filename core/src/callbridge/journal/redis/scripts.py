"""The Redis journal's Lua scripts, each run atomically by the server.

Every write that touches several keys is one script, so that readers never see half of it
(see ``redis/__init__``). Delivery scripts get the key prefix as ``ARGV[1]`` and build the
per-plugin and per-call keys themselves; that is why the journal needs a standalone Redis
(or one shard), not Redis Cluster.
"""

from __future__ import annotations

#: KEYS: counter, dedup hash, stream. ARGV: dedup key, received at (us), source, raw, kind,
#: parsed, dedup window (us). The hash maps a dedup key to the seq of the *latest* event with
#: that key; a hit costs one more lookup, the stream entry's ``at``: less than the window away
#: from this event's, a repeat; further (or the entry is gone), a new event that takes the key
#: over. The hot path (a new key) is unchanged and the layout too: no migration, and an older
#: callbridge reading this journal sees what it expects.
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
           'key', ARGV[1], 'raw', ARGV[4], 'kind', ARGV[5], 'parsed', ARGV[6])
redis.call('HSET', KEYS[2], ARGV[1], n)
return {n, 0}
"""

#: KEYS: counter, stream. ARGV: MAXLEN (0: none), then field/value pairs.
STREAM_ADD_LUA = """
local n = redis.call('INCR', KEYS[1])
local args = {'XADD', KEYS[2]}
if ARGV[1] ~= '0' then
  table.insert(args, 'MAXLEN'); table.insert(args, '~'); table.insert(args, ARGV[1])
end
table.insert(args, string.format('%d-0', n))
for i = 2, #ARGV do table.insert(args, ARGV[i]) end
redis.call(unpack(args))
return n
"""

#: KEYS: data hash, all calls zset, open calls zset, settled set. ARGV: key, json, score, settled.
SAVE_CALL_LUA = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
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

#: ARGV: prefix, call_key, plugin, action, now, payload. Returns the delivery's hash.
ENQUEUE_LUA = (
    DELIVERY_PRELUDE
    + r"""
local ik = ARGV[2] .. '\31' .. ARGV[3] .. '\31' .. ARGV[4]
local id = redis.call('HGET', p .. ':deliveries:index', ik)
if not id then
  id = redis.call('INCR', p .. ':deliveries:seq')
  redis.call('HSET', dkey(id), 'id', id, 'call_key', ARGV[2], 'plugin', ARGV[3],
             'action', ARGV[4], 'attempts', 0, 'created_at', ARGV[5], 'payload', ARGV[6])
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

#: ARGV: prefix, cutoff (us), ids. Deletes each delivery that is still done or dead and
#: older than the cutoff, with every index that names it; returns how many.
PRUNE_DELIVERIES_LUA = r"""
local p = ARGV[1]
local cutoff = tonumber(ARGV[2])
local n = 0
for i = 3, #ARGV do
  local id = ARGV[i]
  local k = p .. ':delivery:' .. id
  local f = redis.call('HMGET', k, 'state', 'plugin', 'call_key', 'action', 'created_at',
                   'retried_at')
  local st = f[1]
  local at = tonumber(f[6] or f[5])
  if (st == 'done' or st == 'dead') and at and at < cutoff then
redis.call('DEL', k)
redis.call('HDEL', p .. ':deliveries:index', f[3] .. '\31' .. f[2] .. '\31' .. f[4])
redis.call('ZREM', p .. ':deliveries:all', id)
redis.call('SREM', p .. ':deliveries:call:' .. f[3], id)
redis.call('ZREM', p .. ':deliveries:state:' .. st, id)
redis.call('HINCRBY', p .. ':deliveries:counts', f[2] .. '\31' .. st, -1)
local m = string.format('%012d', tonumber(id))
redis.call('ZREM', p .. ':deliveries:due', m)
redis.call('ZREM', p .. ':deliveries:due:' .. f[2], m)
n = n + 1
  end
end
return n
"""

#: An agent message (``STREAM_ADD_LUA`` without trimming) and its doorbell, in one step.
#: KEYS: counter, the agent's stream, the bell channel. ARGV: extension, then field/value pairs.
#: Publishing inside the script means no bell rings for a message that was not stored, and
#: none is missing for one that was (unless the listener was disconnected: see ``bells.py``).
AGENT_ADD_LUA = """
local n = redis.call('INCR', KEYS[1])
local args = {'XADD', KEYS[2], string.format('%d-0', n)}
for i = 2, #ARGV do table.insert(args, ARGV[i]) end
redis.call(unpack(args))
redis.call('PUBLISH', KEYS[3], ARGV[1] .. ' ' .. n)
return n
"""
