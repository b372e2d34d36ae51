"""One owner at a time: a fencing token in Redis, checked by every write.

Taking a session over increments its token; each write is a Lua script that first
compares the writer's token with the current one, so an instance that was frozen (or
cut off) while another took the session cannot append audio or finals afterwards. The
scripts are idempotent, so a write retried after a lost reply is not applied twice.
"""

from __future__ import annotations

FENCED = "FENCED"

# KEYS: meta. ARGV: digest, ttl_ms. A new session, owned with token 1.
CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.error_reply('EXISTS') end
redis.call('HSET', KEYS[1], 'digest', ARGV[1], 'fence', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

# KEYS: meta. ARGV: ttl_ms. Take an existing session over: the new token, or nil.
TAKE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local token = redis.call('HINCRBY', KEYS[1], 'fence', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return token
"""

# KEYS: meta, audio stream, finals. ARGV: token, ttl_ms, source, frame bytes, seq, pcm, ...
APPEND = """
if redis.call('HGET', KEYS[1], 'fence') ~= ARGV[1] then return redis.error_reply('FENCED') end
local next_seq = tonumber(redis.call('HGET', KEYS[1], 'next:' .. ARGV[3]) or '0')
for i = 5, #ARGV, 2 do
  local seq = tonumber(ARGV[i])
  if seq >= next_seq then
    redis.call('XADD', KEYS[2], seq .. '-1', 'pcm', ARGV[i + 1])
    next_seq = seq + 1
  end
end
redis.call('HSET', KEYS[1], 'next:' .. ARGV[3], next_seq, 'bytes:' .. ARGV[3], ARGV[4])
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
return next_seq
"""

# KEYS: meta, audio stream, finals.
# ARGV: token, ttl_ms, source, final json, index, keep_from, adaptation ('' for none).
FINAL = """
if redis.call('HGET', KEYS[1], 'fence') ~= ARGV[1] then return redis.error_reply('FENCED') end
local count = tonumber(redis.call('HGET', KEYS[1], 'finals:' .. ARGV[3]) or '0')
if count < tonumber(ARGV[5]) then
  redis.call('RPUSH', KEYS[3], ARGV[4])
  redis.call('HSET', KEYS[1], 'finals:' .. ARGV[3], ARGV[5])
  if ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'adapt:' .. ARGV[3], ARGV[7]) end
end
local keep = tonumber(ARGV[6])
if keep > tonumber(redis.call('HGET', KEYS[1], 'from:' .. ARGV[3]) or '0') then
  redis.call('XTRIM', KEYS[2], 'MINID', keep)
  redis.call('HSET', KEYS[1], 'from:' .. ARGV[3], keep)
end
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
return 1
"""

# KEYS: meta, finals, audio streams... ARGV: token. The session ended: forget it.
END = """
if redis.call('HGET', KEYS[1], 'fence') ~= ARGV[1] then return redis.error_reply('FENCED') end
redis.call('DEL', unpack(KEYS))
return 1
"""
