-- wrk script: POST a text-to-image request; print the summary as one JSON line (latencies in µs).
wrk.method = "POST"
wrk.body = '{"model": "gpt-image-1", "prompt": "a lighthouse at dawn"}'
wrk.headers["Content-Type"] = "application/json"

done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'JSON {"requests": %d, "duration_us": %d, "p50": %d, "p90": %d, "p99": %d, "errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    errors.connect + errors.read + errors.write + errors.status + errors.timeout))
end
