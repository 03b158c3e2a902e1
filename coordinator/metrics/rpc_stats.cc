#include "coordinator/metrics/rpc_stats.h"

#include "absl/strings/str_format.h"

namespace ddlm {

void RpcStats::Record(const std::string& method, const std::string& code, absl::Duration latency) {
  const double seconds = absl::ToDoubleSeconds(latency);
  absl::MutexLock lock(&mu_);
  ++counts_[{method, code}];
  Histogram& h = latencies_[method];
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) {
      ++h.buckets[i];
      break;
    }
  }
  ++h.count;
  h.sum += seconds;
}

void RpcStats::AppendTo(PrometheusText& out) const {
  absl::MutexLock lock(&mu_);
  out.Family("ddlm_rpc_requests_total", "counter", "RPCs the coordinator finished, by method and status code.");
  for (const auto& [key, count] : counts_) {
    out.Sample("ddlm_rpc_requests_total", {{"method", key.first}, {"code", key.second}}, static_cast<double>(count));
  }
  out.Family("ddlm_rpc_duration_seconds", "histogram",
             "How long the coordinator's RPCs took, from arrival to status (a stream: its whole life).");
  for (const auto& [method, h] : latencies_) {
    int64_t cumulative = 0;
    for (size_t i = 0; i < kBuckets.size(); ++i) {
      cumulative += h.buckets[i];
      out.Sample("ddlm_rpc_duration_seconds_bucket", {{"method", method}, {"le", absl::StrFormat("%g", kBuckets[i])}},
                 static_cast<double>(cumulative));
    }
    out.Sample("ddlm_rpc_duration_seconds_bucket", {{"method", method}, {"le", "+Inf"}}, static_cast<double>(h.count));
    out.Sample("ddlm_rpc_duration_seconds_sum", {{"method", method}}, h.sum);
    out.Sample("ddlm_rpc_duration_seconds_count", {{"method", method}}, static_cast<double>(h.count));
  }
}

}  // namespace ddlm
