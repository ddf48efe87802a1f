-- wrk script: POST a pod with a unique name on every request.
--
--   wrk -t1 -c50 -d10s -s bench/wrk_create_pods.lua https://127.0.0.1:PORT \
--       -- <bearer token> [name prefix] [namespace]
--
-- Names are <prefix>-<thread>-<counter>, so no two requests (of any wrk
-- thread) collide.  Prints one machine-readable line at the end:
--   WRK creates=N seconds=S non201=E p50_ms=.. p90_ms=.. p99_ms=.. p999_ms=.. max_ms=..

local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  token = args[1] or ""
  prefix = args[2] or "wrk"
  namespace = args[3] or "default"
  path = "/api/v1/namespaces/" .. namespace .. "/pods"
  headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}
  counter = 0
  non201 = 0
end

-- the same pod as bench/apiserver_bench.py's pod()
local template = '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"%s","labels":{"app":"bench","shard":"%s"}},'
  .. '"spec":{"containers":[{"name":"c","image":"busybox:1.36","command":["sleep","3600"],'
  .. '"resources":{"requests":{"cpu":"10m","memory":"16Mi"}}}]}}'

function request()
  counter = counter + 1
  local name = string.format("%s-%d-%07d", prefix, tid, counter)
  return wrk.format("POST", path, headers, string.format(template, name, string.sub(name, -1)))
end

function response(status, hdrs, body)
  if status ~= 201 then
    non201 = non201 + 1
  end
end

function done(summary, latency, requests)
  local errors = 0
  for _, t in ipairs(threads) do
    errors = errors + (t:get("non201") or 0)
  end
  local ms = function(us) return us / 1000.0 end
  io.write(string.format("WRK creates=%d seconds=%.3f non201=%d p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f p999_ms=%.2f max_ms=%.2f\n",
    summary.requests, summary.duration / 1e6, errors,
    ms(latency:percentile(50)), ms(latency:percentile(90)), ms(latency:percentile(99)),
    ms(latency:percentile(99.9)), ms(latency.max)))
end
