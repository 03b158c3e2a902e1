#ifndef DDLM_COORDINATOR_METRICS_RPC_STATS_H_
#define DDLM_COORDINATOR_METRICS_RPC_STATS_H_

// Counts and latencies of the coordinator's RPCs, by method and status code, for
// /metrics. A gRPC interceptor (coordinator/rpc/rpc_stats_interceptor.h) records each
// call as it ends; a stream's latency is its whole life.
//
// Threading: thread-safe. Record is on every RPC's path: it takes a mutex for one map
// lookup, and allocates only the first time a method is seen.

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "coordinator/metrics/prometheus_text.h"

namespace ddlm {

class RpcStats {
 public:
  // Upper bounds of the latency histogram's buckets, in seconds (then +Inf).
  static constexpr std::array<double, 12> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                      0.05,   0.1,   0.25,   1,     10,   60};

  // `method` as gRPC names it ("/ddlm.JobService/GetJob"); `code` a gRPC status code
  // (written out as absl names it: "OK", "NOT_FOUND").
  void Record(absl::string_view method, int code, absl::Duration latency) ABSL_LOCKS_EXCLUDED(mu_);

  // ddlm_rpc_requests_total{method,code} and ddlm_rpc_duration_seconds{method}.
  void AppendTo(PrometheusText& out) const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // gRPC's status codes are 0 (OK) to 16 (UNAUTHENTICATED).
  static constexpr int kCodes = 17;
  struct MethodStats {
    std::array<int64_t, kCodes> by_code{};           // Out-of-range codes count as UNKNOWN.
    std::array<int64_t, kBuckets.size()> buckets{};  // Cumulated when written out.
    int64_t count = 0;
    double sum = 0;
  };
  mutable absl::Mutex mu_;
  std::map<std::string, MethodStats, std::less<>> methods_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ddlm

#endif  // DDLM_COORDINATOR_METRICS_RPC_STATS_H_
