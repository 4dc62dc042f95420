-- wrk script: one path per request from a file (one path per line), cycling; counts
-- responses that are not the expected status and reports p50/p99 in microseconds.
-- usage: wrk ... -s distinct.lua http://host:port -- paths.txt 307
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  paths = {}
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  expected = tonumber(args[2] or "307")
  unexpected = 0
  i = math.random(#paths)
end

function request()
  i = i + 1
  if i > #paths then i = 1 end
  return wrk.format("GET", paths[i])
end

function response(status, headers, body)
  if status ~= expected then unexpected = unexpected + 1 end
end

function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + t:get("unexpected") end
  io.write(string.format("RESULT requests=%d duration_us=%d unexpected=%d errors=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, bad,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout + summary.errors.status,
    latency:percentile(50), latency:percentile(99)))
end
