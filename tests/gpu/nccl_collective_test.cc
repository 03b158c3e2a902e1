// NCCL on real GPUs: one rank per visible device (threads), exact sums, broadcast and
// gather, and the event-ordered all-reduce the gradient reducer uses. Skips without a
// CUDA device; compiled for real only with --config=cuda.

#include <torch/torch.h>

#include <thread>
#include <vector>

#include "common/base/key_value_store.h"
#include "gtest/gtest.h"
#include "worker/collectives/nccl_collective.h"

#ifdef DDLM_WITH_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "common/training/device.h"
#endif

namespace ddlm {
namespace {

#ifdef DDLM_WITH_CUDA

// Runs `body` on `world` threads, rank r on cuda:r, after a real NCCL rendezvous.
void RunOnNcclGroup(int world, const std::function<void(int, Collective&)>& body) {
  InMemoryKeyValueStore store;
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      CollectiveOptions options;
      options.rank = r;
      options.world_size = world;
      options.store_prefix = "test/";
      options.timeout = absl::Seconds(60);
      absl::StatusOr<std::unique_ptr<Collective>> c = CreateNcclCollective(options, &store, r);
      ASSERT_TRUE(c.ok()) << c.status();
      EXPECT_EQ((*c)->device(), torch::Device(torch::kCUDA, r));
      body(r, **c);
    });
  }
  for (std::thread& t : threads) t.join();
}

int World() { return static_cast<int>(torch::cuda::device_count()); }

TEST(NcclCollectiveTest, AllReduceSumsExactlyAtTheMachinesWorldSize) {
  if (World() == 0) GTEST_SKIP() << "no CUDA device visible";
  const int world = World();
  std::printf("NCCL world size %d (one rank per GPU)\n", world);
  RunOnNcclGroup(world, [&](int r, Collective& c) {
    const torch::Device device(torch::kCUDA, r);
    // Integers well inside float32's exact range: the sum is exact in any order.
    torch::Tensor t = torch::arange(1 << 20, torch::TensorOptions(device).dtype(torch::kFloat)) + r;
    ASSERT_TRUE(c.AllReduceSum(t).ok());
    torch::Tensor expected =
        torch::arange(1 << 20, torch::TensorOptions(device).dtype(torch::kFloat)) * world + world * (world - 1) / 2;
    EXPECT_TRUE(torch::equal(t, expected));
    torch::Tensor b = torch::full({5}, static_cast<float>(r + 10), torch::TensorOptions(device));
    ASSERT_TRUE(c.Broadcast(b, 0).ok());
    EXPECT_TRUE(torch::equal(b.cpu(), torch::full({5}, 10.0f)));
    absl::StatusOr<torch::Tensor> all =
        c.AllGather(torch::full({2}, static_cast<int64_t>(r), torch::TensorOptions(device).dtype(torch::kLong)));
    ASSERT_TRUE(all.ok());
    for (int k = 0; k < world; ++k) EXPECT_EQ((*all)[k][0].item<int64_t>(), k);
    EXPECT_TRUE(c.Barrier().ok());
  });
}

TEST(NcclCollectiveTest, OrderedAllReduceWaitsForTheProducerStreamOnTheDevice) {
  if (World() == 0) GTEST_SKIP() << "no CUDA device visible";
  RunOnNcclGroup(World(), [&](int r, Collective& c) {
    const torch::Device device(torch::kCUDA, r);
    c10::cuda::CUDAGuard guard(device.index());
    std::unique_ptr<DeviceEvent> ready = DeviceEvent::Create(device);
    std::unique_ptr<DeviceEvent> done = DeviceEvent::Create(device);
    torch::Tensor buffer;
    {
      // The producer: a side stream, as the autograd thread's would be. The buffer's
      // zeros are written on it too, so that they come before its adds (zeros on the
      // default stream would race them: nothing orders the two streams).
      c10::cuda::CUDAStreamGuard side(c10::cuda::getStreamFromPool(false, device.index()));
      buffer = torch::zeros({1 << 22}, torch::TensorOptions(device));
      for (int i = 0; i < 50; ++i) buffer.add_(1.0f);  // Queued, not finished.
      ready->RecordOnCurrentStream();
    }
    ASSERT_TRUE(c.AllReduceSumOrdered(buffer, ready.get(), done.get()).ok());
    // The consumer: another stream, ordered by `done` alone.
    c10::cuda::CUDAStreamGuard consumer(c10::cuda::getStreamFromPool(false, device.index()));
    done->WaitOnCurrentStream();
    torch::Tensor result = buffer.mul(2.0f).cpu();
    EXPECT_TRUE(torch::equal(result, torch::full({1 << 22}, 100.0f * c.world_size())));
  });
}

TEST(NcclCollectiveTest, RejectsHostTensorsAndOtherDtypes) {
  if (World() == 0) GTEST_SKIP() << "no CUDA device visible";
  RunOnNcclGroup(1, [&](int, Collective& c) {
    torch::Tensor host = torch::ones({3});
    EXPECT_EQ(c.AllReduceSum(host).code(), absl::StatusCode::kInvalidArgument);
    torch::Tensor ints = torch::ones({3}, torch::TensorOptions(torch::kCUDA).dtype(torch::kInt));
    EXPECT_EQ(c.AllReduceSum(ints).code(), absl::StatusCode::kInvalidArgument);
  });
}

#else

TEST(NcclCollectiveTest, NeedsTheCudaBuild) {
  InMemoryKeyValueStore store;
  absl::StatusOr<std::unique_ptr<Collective>> c = CreateNcclCollective(CollectiveOptions(), &store, 0);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kUnimplemented);
  GTEST_SKIP() << "built without CUDA: the NCCL tests run in a --config=cuda build on a GPU";
}

#endif

}  // namespace
}  // namespace ddlm
