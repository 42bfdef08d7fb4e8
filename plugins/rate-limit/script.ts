// The Redis side of the limiter: one Lua script, run atomically by Redis, so concurrent requests
// on any number of gateways can never both read a key before either writes it (the race that let
// Kong's and APISIX's read-then-increment policies admit bursts far over the limit).
//
// One call decides a batch of requests (every request a gateway received in one turn of its event
// loop), each with all of its route's policies: one round trip however many requests and policies.
// A request's policies are all-or-nothing: only when every one allows is any TAT moved, so a
// request refused by one policy spends nothing of the others' budgets.
//
// Time comes from Redis (`TIME`), never from a gateway, so clock skew between gateways changes
// nothing. Writing after TIME needs effects replication: the default since Redis 5, asked for
// explicitly on 3.2 and 4 (where replicate_commands exists and whole-script replication is the
// default), a no-op on 7.
// Every key is written with a TTL equal to the time until its state equals "absent" (TAT reached),
// so an idle key costs memory only for as long as it still limits.
//
// The arithmetic is gcra.ts's; numbers are integer microseconds (below 2^53, exact in Lua's
// doubles), written with %d since tostring() would round them to 14 digits.

export const RATE_LIMIT_SCRIPT = `
-- KEYS: the keys of every request of the batch, request after request, policy after policy.
-- ARGV[1]: number of requests; then one string per request: for each of its policies, in KEYS
--          order, its period (window / limit) and tolerance (period x burst) in microseconds,
--          space-separated ("50000 2000000 1000 1000000"). A route's string never changes, so the
--          gateway sends it as it is and each distinct one is parsed once per call.
-- Returns, per policy in KEYS order: allowed (1/0), remaining, retry-after ms, reset ms.
if redis.replicate_commands then redis.replicate_commands() end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local parsed = {}
local out = {}
local k = 1 -- next key in KEYS
for r = 1, tonumber(ARGV[1]) do
  local text = ARGV[1 + r]
  local spec = parsed[text]
  if spec == nil then
    spec = {}
    for number in string.gmatch(text, '%d+') do spec[#spec + 1] = tonumber(number) end
    parsed[text] = spec
  end
  local n = #spec / 2
  local tats, next_tats, oks = {}, {}, {}
  local all = true
  -- First pass: what each policy would say, without writing anything.
  for i = 0, n - 1 do
    local period, tolerance = spec[2 * i + 1], spec[2 * i + 2]
    -- An absent key (never seen, or expired) is a fully rested one: TAT = now.
    local tat = tonumber(redis.call('GET', KEYS[k + i])) or now
    if tat < now then tat = now end
    local next_tat = tat + period
    local ok = next_tat - tolerance <= now
    tats[i], next_tats[i], oks[i] = tat, next_tat, ok
    if not ok then all = false end
  end
  -- Second pass: move every TAT if all allowed, and report each policy's state.
  for i = 0, n - 1 do
    local period, tolerance = spec[2 * i + 1], spec[2 * i + 2]
    local tat = tats[i]
    if all then
      tat = next_tats[i]
      -- Expires when TAT is reached: from then on the key would read as absent anyway.
      redis.call('SET', KEYS[k + i], string.format('%d', tat), 'PX', math.max(1, math.ceil((tat - now) / 1000)))
    end
    local remaining = math.floor((now + tolerance - tat) / period)
    if remaining < 0 then remaining = 0 end
    local retry = 0
    if not oks[i] then retry = math.ceil((next_tats[i] - tolerance - now) / 1000) end
    out[#out + 1] = oks[i] and 1 or 0
    out[#out + 1] = remaining
    out[#out + 1] = retry
    out[#out + 1] = math.ceil((tat - now) / 1000)
  end
  k = k + n
end
return out
`;

// Instance heartbeat: how many gateways share this Redis, so each can enforce limit / N on its own
// when Redis goes away (failureMode: local). A sorted set of instance ids scored by their last
// heartbeat (Redis time, ms); members older than the window are dropped on every beat.
export const HEARTBEAT_SCRIPT = `
-- KEYS[1]: the instances set. ARGV[1]: this instance's id. ARGV[2]: the window in ms.
if redis.replicate_commands then redis.replicate_commands() end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
-- The set lives on only while someone beats.
redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[2]))
return redis.call('ZCARD', KEYS[1])
`;
