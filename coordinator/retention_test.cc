#include "coordinator/retention.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ddlm {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::vector<CheckpointInfo> Make(std::vector<std::pair<std::string, bool>> ids) {
  std::vector<CheckpointInfo> out;
  for (auto& [id, best] : ids) {
    CheckpointInfo c;
    c.set_id(id);
    c.set_best(best);
    out.push_back(c);
  }
  return out;
}

TEST(RetentionTest, KeepsLatestAndBest) {
  auto kept = Make({{"a", false}, {"b", true}, {"c", false}, {"d", false}, {"e", false}});
  EXPECT_THAT(CheckpointsToDelete(kept, 2), ElementsAre("a", "c"));
}

TEST(RetentionTest, BestAmongTheLatestCostsNothingExtra) {
  auto kept = Make({{"a", false}, {"b", false}, {"c", true}});
  EXPECT_THAT(CheckpointsToDelete(kept, 1), ElementsAre("a", "b"));
}

TEST(RetentionTest, FewerThanKeepLastDeletesNothing) {
  auto kept = Make({{"a", false}, {"b", false}});
  EXPECT_THAT(CheckpointsToDelete(kept, 3), IsEmpty());
}

}  // namespace
}  // namespace ddlm
