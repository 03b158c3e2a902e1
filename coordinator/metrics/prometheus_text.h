#ifndef DDLM_COORDINATOR_METRICS_PROMETHEUS_TEXT_H_
#define DDLM_COORDINATOR_METRICS_PROMETHEUS_TEXT_H_

// Prometheus's text exposition format (version 0.0.4): each metric family's # HELP and
// # TYPE lines, then its samples, one per line, with label values escaped.
//
// Threading: not thread-safe.

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace ddlm {

using PrometheusLabels = std::vector<std::pair<std::string, std::string>>;

class PrometheusText {
 public:
  // Starts a family: type is "gauge", "counter" or "histogram".
  void Family(absl::string_view name, absl::string_view type, absl::string_view help);
  // One sample of the current family (`name` may carry a suffix such as _bucket).
  void Sample(absl::string_view name, const PrometheusLabels& labels, double value);

  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

// A label value as the format quotes it: backslash, double quote and newline escaped.
std::string EscapeLabelValue(absl::string_view value);

}  // namespace ddlm

#endif  // DDLM_COORDINATOR_METRICS_PROMETHEUS_TEXT_H_
