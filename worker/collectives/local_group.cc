#include "worker/collectives/local_group.h"

#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "worker/collectives/gloo_collective.h"

namespace ddlm::testing {

void RunOnLocalGlooGroup(KeyValueStore* store, const std::string& prefix, int world_size, const RankBody& body,
                         absl::Duration timeout) {
  std::vector<std::thread> threads;
  for (int rank = 0; rank < world_size; ++rank) {
    threads.emplace_back([=, &body] {
      CollectiveOptions options;
      options.rank = rank;
      options.world_size = world_size;
      options.store_prefix = prefix;
      options.host = "127.0.0.1";
      options.timeout = timeout;
      absl::StatusOr<std::unique_ptr<Collective>> collective = CreateGlooCollective(options, store);
      ASSERT_TRUE(collective.ok()) << "rank " << rank << ": " << collective.status();
      body(rank, **collective);
    });
  }
  for (std::thread& thread : threads) thread.join();
}

void RunOnLocalGlooGroup(int world_size, const RankBody& body, absl::Duration timeout) {
  InMemoryKeyValueStore store;
  RunOnLocalGlooGroup(&store, "local/", world_size, body, timeout);
}

}  // namespace ddlm::testing
