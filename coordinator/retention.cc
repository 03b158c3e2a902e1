#include "coordinator/retention.h"

namespace ddlm {

std::vector<std::string> CheckpointsToDelete(const std::vector<CheckpointInfo>& kept, int keep_last) {
  int best = -1;
  for (int i = 0; i < static_cast<int>(kept.size()); ++i) {
    if (kept[i].best()) best = i;
  }
  const int first_recent = static_cast<int>(kept.size()) - std::max(keep_last, 1);
  std::vector<std::string> doomed;
  for (int i = 0; i < first_recent; ++i) {
    if (i != best) doomed.push_back(kept[i].id());
  }
  return doomed;
}

}  // namespace ddlm
