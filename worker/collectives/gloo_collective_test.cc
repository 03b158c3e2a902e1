#include "worker/collectives/gloo_collective.h"
#include "worker/collectives/local_group.h"

#include <torch/torch.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/base/key_value_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ddlm {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;

// Bounds a test that goes wrong (a rank failing before a collective that the others
// wait in) instead of letting it hang for the five-minute default.
constexpr absl::Duration kTestTimeout = absl::Seconds(20);

CollectiveOptions Options(int rank, int world_size, const std::string& prefix = "job/0/",
                          absl::Duration timeout = kTestTimeout) {
  CollectiveOptions options;
  options.rank = rank;
  options.world_size = world_size;
  options.store_prefix = prefix;
  options.host = "127.0.0.1";
  options.timeout = timeout;
  return options;
}

// Runs `body` for every rank of a group, each rank on its own thread, after a
// concurrent rendezvous through `store`.
void RunRanks(KeyValueStore* store, const std::string& prefix, int world_size,
              const std::function<void(Collective&)>& body) {
  testing::RunOnLocalGlooGroup(
      store, prefix, world_size,
      [&](int rank, Collective& collective) {
        EXPECT_EQ(collective.rank(), rank);
        EXPECT_EQ(collective.world_size(), world_size);
        body(collective);
      },
      kTestTimeout);
}

void RunRanks(int world_size, const std::function<void(Collective&)>& body) {
  InMemoryKeyValueStore store;
  RunRanks(&store, "job/0/", world_size, body);
}

// Every rank holds (i % 1000) * (rank + 1): integer-valued floats, so the sums are
// exact whatever order Gloo adds them in.
torch::Tensor RankValues(int64_t numel, int rank) {
  return torch::arange(numel, torch::kFloat32).remainder(1000) * (rank + 1);
}

class GlooCollectiveTest : public ::testing::TestWithParam<int> {};

TEST_P(GlooCollectiveTest, AllReduceSumGivesExactSums) {
  const int n = GetParam();
  const float rank_factor_sum = n * (n + 1) / 2.0f;
  RunRanks(n, [&](Collective& collective) {
    torch::Tensor small = RankValues(6, collective.rank()).reshape({2, 3});
    ASSERT_TRUE(collective.AllReduceSum(small).ok());
    EXPECT_TRUE(torch::equal(small, (RankValues(6, 0) * rank_factor_sum).reshape({2, 3}))) << small;

    // 300,000 floats are more than one of Gloo's 1 MiB segments.
    torch::Tensor large = RankValues(300000, collective.rank());
    ASSERT_TRUE(collective.AllReduceSum(large).ok());
    EXPECT_TRUE(torch::equal(large, RankValues(300000, 0) * rank_factor_sum));
  });
}

// bfloat16 (the reducer's compressed all-reduce): small integers are exact in bfloat16,
// so the sums are too; a value that bfloat16 cannot hold comes back rounded, the same
// on every rank.
TEST_P(GlooCollectiveTest, AllReduceSumOfBfloat16) {
  const int n = GetParam();
  const float rank_factor_sum = n * (n + 1) / 2.0f;
  std::vector<torch::Tensor> rounded(n);
  RunRanks(n, [&](Collective& collective) {
    // 700,000 bfloat16 are more than one of Gloo's 1 MiB segments.
    const torch::Tensor small_ints = torch::arange(700000, torch::kFloat32).remainder(16);
    torch::Tensor t = (small_ints * (collective.rank() + 1)).to(torch::kBFloat16);
    ASSERT_TRUE(collective.AllReduceSum(t).ok());
    ASSERT_EQ(t.scalar_type(), torch::kBFloat16);
    EXPECT_TRUE(torch::equal(t.to(torch::kFloat32), small_ints * rank_factor_sum));

    torch::Tensor odd = torch::full({3}, 1.0f + 1.0f / 256, torch::kFloat32).to(torch::kBFloat16);
    ASSERT_TRUE(collective.AllReduceSum(odd).ok());
    rounded[collective.rank()] = odd;
  });
  for (int r = 0; r < n; ++r) {
    ASSERT_TRUE(rounded[r].defined());
    EXPECT_TRUE(torch::equal(rounded[r], rounded[0])) << "rank " << r;
    EXPECT_NEAR(rounded[r][0].item<float>(), n * (1.0f + 1.0f / 256), n * 0.01f);
  }
}

TEST_P(GlooCollectiveTest, BroadcastCopiesTheRootsValues) {
  const int n = GetParam();
  RunRanks(n, [&](Collective& collective) {
    const int r = collective.rank();
    for (int root : {0, n - 1}) {
      torch::Tensor floats = torch::arange(5, torch::kFloat32) + 10.0f * r;
      ASSERT_TRUE(collective.Broadcast(floats, root).ok());
      EXPECT_TRUE(torch::equal(floats, torch::arange(5, torch::kFloat32) + 10.0f * root))
          << "root " << root << ": " << floats;

      // Any dtype: moved as bytes.
      torch::Tensor longs = torch::arange(3, torch::kInt64) + (int64_t{1} << 40) * r;
      ASSERT_TRUE(collective.Broadcast(longs, root).ok());
      EXPECT_TRUE(torch::equal(longs, torch::arange(3, torch::kInt64) + (int64_t{1} << 40) * root))
          << "root " << root << ": " << longs;
    }
  });
}

TEST_P(GlooCollectiveTest, AllGatherReturnsRowsInRankOrder) {
  const int n = GetParam();
  RunRanks(n, [&](Collective& collective) {
    const int r = collective.rank();
    torch::Tensor floats = (torch::arange(6, torch::kFloat32) + 100.0f * r).reshape({2, 3});
    absl::StatusOr<torch::Tensor> gathered = collective.AllGather(floats);
    ASSERT_TRUE(gathered.ok()) << gathered.status();
    ASSERT_EQ(gathered->sizes(), (std::vector<int64_t>{n, 2, 3}));
    ASSERT_EQ(gathered->scalar_type(), torch::kFloat32);
    for (int peer = 0; peer < n; ++peer) {
      EXPECT_TRUE(torch::equal((*gathered)[peer], (torch::arange(6, torch::kFloat32) + 100.0f * peer).reshape({2, 3})))
          << "row " << peer << " on rank " << r;
    }

    torch::Tensor bytes = torch::tensor({r, 2 * r + 1, 255 - r}, torch::kUInt8);
    absl::StatusOr<torch::Tensor> gathered_bytes = collective.AllGather(bytes);
    ASSERT_TRUE(gathered_bytes.ok()) << gathered_bytes.status();
    ASSERT_EQ(gathered_bytes->sizes(), (std::vector<int64_t>{n, 3}));
    ASSERT_EQ(gathered_bytes->scalar_type(), torch::kUInt8);
    for (int peer = 0; peer < n; ++peer) {
      EXPECT_TRUE(torch::equal((*gathered_bytes)[peer], torch::tensor({peer, 2 * peer + 1, 255 - peer}, torch::kUInt8)))
          << "row " << peer << " on rank " << r << ": " << *gathered_bytes;
    }
  });
}

TEST_P(GlooCollectiveTest, BarrierReturnsOnlyOnceEveryRankArrived) {
  const int n = GetParam();
  std::atomic<int> arrived{0};
  RunRanks(n, [&](Collective& collective) {
    for (int round = 1; round <= 3; ++round) {
      arrived.fetch_add(1);
      ASSERT_TRUE(collective.Barrier().ok());
      // Every rank incremented before the first barrier, and none can increment for the
      // next round before all have passed the second one: the count is exact here.
      EXPECT_EQ(arrived.load(), round * n) << "rank " << collective.rank();
      ASSERT_TRUE(collective.Barrier().ok());
    }
  });
  EXPECT_EQ(arrived.load(), 3 * n);
}

TEST_P(GlooCollectiveTest, MixedOperationsStayInStep) {
  const int n = GetParam();
  RunRanks(n, [&](Collective& collective) {
    const int r = collective.rank();
    for (int step = 0; step < 5; ++step) {
      torch::Tensor grad = torch::full({4}, static_cast<float>(r + step));
      ASSERT_TRUE(collective.AllReduceSum(grad).ok());
      const float expected = n * (n - 1) / 2.0f + n * step;
      EXPECT_TRUE(torch::equal(grad, torch::full({4}, expected))) << grad;

      torch::Tensor weights = torch::full({2}, static_cast<float>(r * 7 + step));
      ASSERT_TRUE(collective.Broadcast(weights, step % n).ok());
      EXPECT_TRUE(torch::equal(weights, torch::full({2}, static_cast<float>((step % n) * 7 + step))));

      absl::StatusOr<torch::Tensor> losses = collective.AllGather(torch::full({1}, static_cast<float>(r * step)));
      ASSERT_TRUE(losses.ok()) << losses.status();
      EXPECT_TRUE(torch::equal(*losses, (torch::arange(n, torch::kFloat32) * step).reshape({n, 1})));
      ASSERT_TRUE(collective.Barrier().ok());
    }
  });
}

INSTANTIATE_TEST_SUITE_P(WorldSizes, GlooCollectiveTest, ::testing::Values(2, 3),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return "Ranks" + std::to_string(info.param);
                         });

TEST(GlooCollectiveGroupsTest, PrefixesKeepGroupsApartInOneStore) {
  InMemoryKeyValueStore store;
  std::thread group_a([&] {
    RunRanks(&store, "job/a/", 2, [](Collective& collective) {
      torch::Tensor t = torch::full({3}, 1.0f);
      ASSERT_TRUE(collective.AllReduceSum(t).ok());
      EXPECT_TRUE(torch::equal(t, torch::full({3}, 2.0f))) << t;
    });
  });
  std::thread group_b([&] {
    RunRanks(&store, "job/b/", 3, [](Collective& collective) {
      torch::Tensor t = torch::full({3}, 10.0f);
      ASSERT_TRUE(collective.AllReduceSum(t).ok());
      EXPECT_TRUE(torch::equal(t, torch::full({3}, 30.0f))) << t;
    });
  });
  group_a.join();
  group_b.join();
}

TEST(GlooCollectiveSingleRankTest, EveryOperationWorksAlone) {
  InMemoryKeyValueStore store;
  absl::StatusOr<std::unique_ptr<Collective>> collective = CreateGlooCollective(Options(0, 1), &store);
  ASSERT_TRUE(collective.ok()) << collective.status();
  Collective& c = **collective;
  EXPECT_EQ(c.rank(), 0);
  EXPECT_EQ(c.world_size(), 1);

  torch::Tensor t = torch::arange(4, torch::kFloat32);
  ASSERT_TRUE(c.AllReduceSum(t).ok());
  EXPECT_TRUE(torch::equal(t, torch::arange(4, torch::kFloat32)));
  ASSERT_TRUE(c.Broadcast(t, 0).ok());
  EXPECT_TRUE(torch::equal(t, torch::arange(4, torch::kFloat32)));
  absl::StatusOr<torch::Tensor> gathered = c.AllGather(t);
  ASSERT_TRUE(gathered.ok()) << gathered.status();
  EXPECT_TRUE(torch::equal(*gathered, torch::arange(4, torch::kFloat32).reshape({1, 4})));
  EXPECT_TRUE(c.Barrier().ok());
}

TEST(GlooCollectiveSingleRankTest, BadArgumentsAreRejectedWithoutBreakingTheCollective) {
  InMemoryKeyValueStore store;
  absl::StatusOr<std::unique_ptr<Collective>> collective = CreateGlooCollective(Options(0, 1), &store);
  ASSERT_TRUE(collective.ok()) << collective.status();
  Collective& c = **collective;

  torch::Tensor ints = torch::arange(4, torch::kInt32);
  absl::Status status = c.AllReduceSum(ints);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("AllReduceSum"));

  torch::Tensor transposed = torch::ones({2, 3}).t();
  status = c.AllReduceSum(transposed);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("contiguous"));

  torch::Tensor t = torch::ones({2});
  status = c.Broadcast(t, 1);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("root 1"));

  EXPECT_EQ(c.AllGather(torch::Tensor()).status().code(), absl::StatusCode::kInvalidArgument);

  ASSERT_TRUE(c.AllReduceSum(t).ok());
  EXPECT_TRUE(torch::equal(t, torch::ones({2})));
}

TEST(GlooCollectiveOptionsTest, InvalidOptionsAreRejected) {
  InMemoryKeyValueStore store;
  EXPECT_EQ(CreateGlooCollective(Options(2, 2), &store).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CreateGlooCollective(Options(0, 0), &store).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CreateGlooCollective(Options(0, 1, "p/", absl::ZeroDuration()), &store).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CreateGlooCollective(Options(0, 1), nullptr).status().code(), absl::StatusCode::kInvalidArgument);
}

// A peer that never arrives: each rank alone in a group of two gives up after the
// one-second timeout instead of hanging.
TEST(GlooCollectiveRendezvousTest, MissingPeerFailsWithinTheTimeout) {
  for (int rank : {0, 1}) {
    InMemoryKeyValueStore store;
    const absl::Time start = absl::Now();
    absl::StatusOr<std::unique_ptr<Collective>> collective =
        CreateGlooCollective(Options(rank, 2, "job/0/", absl::Seconds(1)), &store);
    const absl::Duration elapsed = absl::Now() - start;
    ASSERT_FALSE(collective.ok()) << "rank " << rank;
    EXPECT_EQ(collective.status().code(), absl::StatusCode::kDeadlineExceeded) << collective.status();
    EXPECT_THAT(collective.status().message(), HasSubstr("gloo rendezvous"));
    EXPECT_LT(elapsed, absl::Seconds(10)) << "rank " << rank;
  }
}

// A peer that leaves after the rendezvous: the survivor's next collective fails, and
// the collective then refuses further work.
TEST(GlooCollectiveRendezvousTest, PeerGoneFailsTheNextOperation) {
  InMemoryKeyValueStore store;
  absl::Notification peer_gone;
  std::thread peer([&] {
    absl::StatusOr<std::unique_ptr<Collective>> collective =
        CreateGlooCollective(Options(1, 2, "job/0/", absl::Seconds(5)), &store);
    ASSERT_TRUE(collective.ok()) << collective.status();
    collective->reset();  // Closes its connections.
    peer_gone.Notify();
  });
  absl::StatusOr<std::unique_ptr<Collective>> collective =
      CreateGlooCollective(Options(0, 2, "job/0/", absl::Seconds(5)), &store);
  ASSERT_TRUE(collective.ok()) << collective.status();
  peer_gone.WaitForNotification();
  peer.join();

  torch::Tensor t = torch::ones({8});
  absl::Status status = (*collective)->AllReduceSum(t);
  EXPECT_THAT(status.code(), AnyOf(absl::StatusCode::kUnavailable, absl::StatusCode::kDeadlineExceeded)) << status;
  EXPECT_THAT(status.message(), HasSubstr("gloo AllReduceSum"));

  status = (*collective)->Barrier();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_THAT(status.message(), HasSubstr("gloo Barrier"));
}

// The ranks disagree on the next operation (a contract violation): rank 0 times out
// after one second and closes its connections, so rank 1, whose own timeout is 20 s,
// fails at once instead of waiting out its timeout.
TEST(GlooCollectiveRendezvousTest, AFailedRankFailsItsPeerPromptly) {
  InMemoryKeyValueStore store;
  absl::Status rank1_status;
  absl::Duration rank1_elapsed;
  std::thread rank1([&] {
    absl::StatusOr<std::unique_ptr<Collective>> collective = CreateGlooCollective(Options(1, 2), &store);
    ASSERT_TRUE(collective.ok()) << collective.status();
    const absl::Time start = absl::Now();
    rank1_status = (*collective)->Barrier();
    rank1_elapsed = absl::Now() - start;
  });
  absl::StatusOr<std::unique_ptr<Collective>> collective =
      CreateGlooCollective(Options(0, 2, "job/0/", absl::Seconds(1)), &store);
  ASSERT_TRUE(collective.ok()) << collective.status();
  torch::Tensor t = torch::ones({64});
  absl::Status status = (*collective)->AllReduceSum(t);
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded) << status;
  EXPECT_THAT(status.message(), HasSubstr("gloo AllReduceSum"));

  rank1.join();
  EXPECT_EQ(rank1_status.code(), absl::StatusCode::kUnavailable) << rank1_status;
  EXPECT_THAT(rank1_status.message(), HasSubstr("gloo Barrier"));
  EXPECT_LT(rank1_elapsed, absl::Seconds(10));
}

}  // namespace
}  // namespace ddlm
