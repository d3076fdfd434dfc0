-- Shared by the wrk scripts: one JSON line with the figures wrk's own report lacks (p95).
function done(summary, latency, requests)
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_s":%.3f,"errors_status":%d,"errors_connect":%d,"errors_timeout":%d,' ..
    '"p50_ms":%.2f,"p95_ms":%.2f,"p99_ms":%.2f,"mean_ms":%.2f}\n',
    summary.requests, summary.duration / 1e6, summary.errors.status, summary.errors.connect, summary.errors.timeout,
    latency:percentile(50) / 1e3, latency:percentile(95) / 1e3, latency:percentile(99) / 1e3, latency.mean / 1e3))
end
