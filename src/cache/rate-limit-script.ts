/**
 * Token bucket, atomically, in one round trip. KEYS[1] is the bucket (a hash). ARGV: capacity,
 * refill per second, cost. Time comes from the Redis server (TIME), so every gateway shares one
 * clock. Returns { allowed (0|1), tokens left (floor), ms until the next token when refused,
 * ms until the bucket is full }.
 */
export const tokenBucketLua = `
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2]) / 1000
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil then
  tokens = capacity
  ts = now
end
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
local allowed = 0
local retry = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  retry = math.ceil((cost - tokens) / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now)
local full = math.ceil((capacity - tokens) / rate)
redis.call('PEXPIRE', KEYS[1], full + 1000)
return { allowed, math.floor(tokens), retry, full }
`;
