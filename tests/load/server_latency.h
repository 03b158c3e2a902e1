#ifndef DDLM_TESTS_LOAD_SERVER_LATENCY_H_
#define DDLM_TESTS_LOAD_SERVER_LATENCY_H_

// The coordinator's own view of its RPC latencies, for control_plane_load: its
// /metrics histograms (ddlm_rpc_duration_seconds, coordinator/metrics/rpc_stats.h)
// scraped before and after the measured window, so that a saturated client core is not
// read as a slow coordinator.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ddlm {

// One method's cumulative histogram: (upper bound in seconds, count <= bound), in
// increasing bound order, +Inf last (as infinity).
using CumulativeHistogram = std::vector<std::pair<double, int64_t>>;

// Every ddlm_rpc_duration_seconds histogram in a Prometheus text page, by method
// ("/ddlm.WorkerService/Heartbeat"). INVALID_ARGUMENT naming the line for a sample
// whose value or le does not parse.
absl::StatusOr<std::map<std::string, CumulativeHistogram>> ParseRpcDurationHistograms(const std::string& page);

struct WindowQuantile {
  int64_t count = 0;   // Calls finished in the window.
  double upper_s = 0;  // The quantile is at most this (a bucket bound; infinity past the last).
};

// The `q` quantile (0 < q <= 1) of the calls that finished between two scrapes of one
// method (`before` may be empty: the method had no calls yet). Bucket resolution: the
// answer is the bound of the bucket holding it.
WindowQuantile QuantileBetween(const CumulativeHistogram& before, const CumulativeHistogram& after, double q);

// GET http://host:port/path over plain HTTP/1.0; the body. UNAVAILABLE if it cannot
// connect, INTERNAL for a status other than 200.
absl::StatusOr<std::string> HttpGet(const std::string& host, int port, const std::string& path);

}  // namespace ddlm

#endif  // DDLM_TESTS_LOAD_SERVER_LATENCY_H_
