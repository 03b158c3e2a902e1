#include "coordinator/metrics/rpc_stats.h"

#include "absl/status/status.h"
#include "absl/strings/str_format.h"

namespace ddlm {

void RpcStats::Record(absl::string_view method, int code, absl::Duration latency) {
  const double seconds = absl::ToDoubleSeconds(latency);
  if (code < 0 || code >= kCodes) code = static_cast<int>(absl::StatusCode::kUnknown);
  absl::MutexLock lock(&mu_);
  auto it = methods_.find(method);
  if (it == methods_.end()) it = methods_.emplace(std::string(method), MethodStats()).first;
  MethodStats& m = it->second;
  ++m.by_code[code];
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) {
      ++m.buckets[i];
      break;
    }
  }
  ++m.count;
  m.sum += seconds;
}

void RpcStats::AppendTo(PrometheusText& out) const {
  absl::MutexLock lock(&mu_);
  out.Family("ddlm_rpc_requests_total", "counter", "RPCs the coordinator finished, by method and status code.");
  for (const auto& [method, m] : methods_) {
    for (int code = 0; code < kCodes; ++code) {
      if (m.by_code[code] == 0) continue;
      out.Sample("ddlm_rpc_requests_total",
                 {{"method", method}, {"code", absl::StatusCodeToString(static_cast<absl::StatusCode>(code))}},
                 static_cast<double>(m.by_code[code]));
    }
  }
  out.Family("ddlm_rpc_duration_seconds", "histogram",
             "How long the coordinator's RPCs took, from arrival to status (a stream: its whole life).");
  for (const auto& [method, m] : methods_) {
    int64_t cumulative = 0;
    for (size_t i = 0; i < kBuckets.size(); ++i) {
      cumulative += m.buckets[i];
      out.Sample("ddlm_rpc_duration_seconds_bucket", {{"method", method}, {"le", absl::StrFormat("%g", kBuckets[i])}},
                 static_cast<double>(cumulative));
    }
    out.Sample("ddlm_rpc_duration_seconds_bucket", {{"method", method}, {"le", "+Inf"}}, static_cast<double>(m.count));
    out.Sample("ddlm_rpc_duration_seconds_sum", {{"method", method}}, m.sum);
    out.Sample("ddlm_rpc_duration_seconds_count", {{"method", method}}, static_cast<double>(m.count));
  }
}

}  // namespace ddlm
