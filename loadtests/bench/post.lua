-- wrk script: POST a text-to-image request; print the summary as one JSON line (latencies in µs).
-- Arguments (after `--`): the connection count and a spread in ms over which the connections send
-- their first request, so that they behave as independent clients rather than start in lockstep.
wrk.method = "POST"
wrk.body = '{"model": "gpt-image-1", "prompt": "a lighthouse at dawn"}'
wrk.headers["Content-Type"] = "application/json"

local connections, spread, first_requests = 0, 0, 0

init = function(args)
  connections = tonumber(args[1]) or 0
  spread = tonumber(args[2]) or 0
end

delay = function()
  if first_requests < connections then
    first_requests = first_requests + 1
    return math.random(0, spread)
  end
  return 0
end

done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'JSON {"requests": %d, "duration_us": %d, "p50": %d, "p90": %d, "p99": %d, "errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    errors.connect + errors.read + errors.write + errors.status + errors.timeout))
end
