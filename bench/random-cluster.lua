-- wrk: GET platform-components of a uniformly random cluster per request.
-- PATHS_FILE lists the paths (bench/fleet.py paths); TOKEN is sent as a bearer token
-- (nginx ignores it); GZIP=1 adds Accept-Encoding: gzip, as Flux's Go client sends.
-- Prints a JSON summary line at the end.
local paths = {}
for line in io.lines(os.getenv("PATHS_FILE")) do
  paths[#paths + 1] = line
end
local headers = { ["Authorization"] = "Bearer " .. (os.getenv("TOKEN") or "") }
if os.getenv("GZIP") == "1" then
  headers["Accept-Encoding"] = "gzip"
end
local thread_seed = 0

function setup(thread)
  thread_seed = thread_seed + 1
  thread:set("seed", thread_seed)
end

function init(args)
  math.randomseed(seed * 7919)
end

function request()
  local path = paths[math.random(#paths)]
  return wrk.format("GET", path, headers)
end

function done(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format(
    '{"requests":%d,"seconds":%.2f,"requests_per_second":%.0f,"p50_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,"errors":%d,"non_2xx":%d}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    errors, summary.errors.status))
end
