#include "worker/rank_state.h"

#include "gtest/gtest.h"
#include "worker/collectives/local_group.h"

namespace ddlm {
namespace {

Checkpoint RankCheckpoint(int rank) {
  Checkpoint c;
  c.header.mutable_spec()->set_num_workers(2);
  c.tensors["param/w"] = torch::ones({3});
  c.tensors["rng/cpu"] = torch::full({8}, rank, torch::kUInt8);
  c.tensors["hidden/0"] = torch::full({2, 4, 3}, 10.0f * (rank + 1));
  return c;
}

TEST(RankStateTest, RankZeroGathersAndEachRankGetsItsOwnStateBack) {
  Checkpoint gathered;
  testing::RunOnLocalGlooGroup(2, [&](int rank, Collective& collective) {
    Checkpoint mine = RankCheckpoint(rank);
    ASSERT_TRUE(GatherRankState(collective, &mine).ok());
    if (rank == 0) gathered = mine;
  });
  ASSERT_EQ(gathered.tensors.count("rank/1/rng/cpu"), 1u);
  ASSERT_EQ(gathered.tensors.count("rank/1/hidden/0"), 1u);

  auto rank0 = CheckpointForRank(gathered, 0);
  ASSERT_TRUE(rank0.ok());
  EXPECT_EQ(rank0->tensors.size(), 3u);
  EXPECT_TRUE(torch::equal(rank0->tensors["hidden/0"], torch::full({2, 4, 3}, 10.0f)));

  auto rank1 = CheckpointForRank(gathered, 1);
  ASSERT_TRUE(rank1.ok());
  EXPECT_EQ(rank1->tensors.size(), 3u);
  EXPECT_TRUE(torch::equal(rank1->tensors["rng/cpu"], torch::full({8}, 1, torch::kUInt8)));
  EXPECT_TRUE(torch::equal(rank1->tensors["hidden/0"], torch::full({2, 4, 3}, 20.0f)));
  EXPECT_TRUE(torch::equal(rank1->tensors["param/w"], torch::ones({3})));

  auto rank2 = CheckpointForRank(gathered, 2);
  EXPECT_EQ(rank2.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(RankStateTest, ANewRankTakesTheSharedStateAndItsOwnGeneratorAtAnEpochStart) {
  Checkpoint c = RankCheckpoint(0);
  c.tensors["rank/1/rng/cpu"] = torch::full({8}, 1, torch::kUInt8);
  c.tensors.erase("hidden/0");  // An epoch end: batch 0, no recurrent state.
  torch::manual_seed(77);       // This rank's own seed.
  Checkpoint reference;
  CaptureRng(torch::kCPU, &reference);
  auto mine = CheckpointForNewRank(c, torch::kCPU);
  ASSERT_TRUE(mine.ok()) << mine.status();
  EXPECT_TRUE(torch::equal(mine->tensors["param/w"], torch::ones({3})));
  EXPECT_EQ(mine->tensors.count("rank/1/rng/cpu"), 0u);
  EXPECT_TRUE(torch::equal(mine->tensors["rng/cpu"], reference.tensors["rng/cpu"]));
  // Mid-epoch, the old sharding's recurrent state would be wrong: refused.
  c.header.mutable_position()->set_batch(5);
  EXPECT_EQ(CheckpointForNewRank(c, torch::kCPU).status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace ddlm
