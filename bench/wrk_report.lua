-- wrk script for bench/run.sh: after the run, prints one machine-readable
-- line with the exact counts and latency percentiles (in microseconds), so
-- nothing has to be parsed out of wrk's rounded human output.

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%.0f,"duration_us":%.0f,"bytes":%.0f,' ..
    '"p50_us":%.0f,"p90_us":%.0f,"p99_us":%.0f,"p999_us":%.0f,' ..
    '"mean_us":%.1f,"max_us":%.0f,' ..
    '"err_connect":%.0f,"err_read":%.0f,"err_write":%.0f,' ..
    '"err_status":%.0f,"err_timeout":%.0f}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9),
    latency.mean, latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end

-- With BENCH_BODY_BYTES > 0, every request is a POST with a body of that many bytes (wrk.format
-- adds its Content-Length).
local body_bytes = tonumber(os.getenv("BENCH_BODY_BYTES") or "") or 0
if body_bytes > 0 then
  wrk.method = "POST"
  wrk.body = string.rep("x", body_bytes)
  wrk.headers["Content-Type"] = "application/octet-stream"
end

-- With BENCH_TOKENS naming a file of bearer tokens (one a line), each request carries the next
-- token in turn: a verification cache then never hits when the file holds more tokens than it.
local tokens = {}
local path = os.getenv("BENCH_TOKENS")
if path and path ~= "" then
  local f = io.open(path)
  if f then
    for line in f:lines() do
      if line ~= "" then tokens[#tokens + 1] = line end
    end
    f:close()
  end
end
if #tokens > 0 then
  local i = 0
  request = function()
    i = i % #tokens + 1
    wrk.headers["Authorization"] = "Bearer " .. tokens[i]
    return wrk.format()
  end
end
