#include "coordinator/scheduler.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace ddlm {
namespace {

// "cpu" or "cuda" from a registered device string ("cpu", "cuda:3").
std::string KindOf(const FreeWorker& w) { return w.device.substr(0, w.device.find(':')); }

// `needed` free workers of one kind: that of the longest-registered free worker with
// enough peers of its kind. Empty if no kind has enough.
std::vector<size_t> PickSameKind(const std::vector<FreeWorker>& free, const std::vector<bool>& taken, int needed) {
  for (size_t first = 0; first < free.size(); ++first) {
    if (taken[first]) continue;
    std::vector<size_t> chosen;
    for (size_t i = 0; i < free.size() && static_cast<int>(chosen.size()) < needed; ++i) {
      if (!taken[i] && KindOf(free[i]) == KindOf(free[first])) chosen.push_back(i);
    }
    if (static_cast<int>(chosen.size()) == needed) return chosen;
  }
  return {};
}

// "1 cpu, 2 cuda".
std::string DescribeKinds(const std::vector<FreeWorker>& free, const std::vector<bool>& taken) {
  std::map<std::string, int> counts;
  for (size_t i = 0; i < free.size(); ++i) {
    if (!taken[i]) ++counts[KindOf(free[i])];
  }
  std::vector<std::string> parts;
  for (const auto& [kind, n] : counts) parts.push_back(absl::StrCat(n, " ", kind));
  return absl::StrJoin(parts, ", ");
}

}  // namespace

SchedulePlan PlanSchedule(const std::vector<QueuedJob>& queue, const std::vector<FreeWorker>& free, int live_workers) {
  SchedulePlan plan;
  std::vector<bool> taken(free.size(), false);
  int left = static_cast<int>(free.size());
  std::string blocker;  // The oldest job that waits; every later one waits behind it.
  for (const QueuedJob& job : queue) {
    if (!blocker.empty()) {
      plan.waiting[job.id] = absl::StrCat("waiting behind ", blocker);
      continue;
    }
    const int fewest = job.min_workers > 0 ? std::min(job.min_workers, job.num_workers) : job.num_workers;
    if (left < fewest) {
      plan.waiting[job.id] =
          absl::StrCat("waiting for ", fewest, " free worker(s): ", left, " free of ", live_workers, " registered");
      blocker = job.id;
      continue;
    }
    std::vector<size_t> chosen;
    for (int n = std::min(left, job.num_workers); n >= fewest && chosen.empty(); --n) {
      chosen = PickSameKind(free, taken, n);
    }
    if (chosen.empty()) {
      plan.waiting[job.id] =
          absl::StrCat("waiting for ", job.num_workers,
                       " free worker(s) of one device kind (a job never mixes CPU and GPU workers); free: ",
                       DescribeKinds(free, taken));
      blocker = job.id;
      continue;
    }
    Placement& p = plan.start.emplace_back();
    p.job_id = job.id;
    for (size_t i : chosen) {
      taken[i] = true;
      p.workers.push_back(free[i].id);
    }
    left -= static_cast<int>(chosen.size());
  }
  return plan;
}

}  // namespace ddlm
