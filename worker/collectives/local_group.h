#ifndef DDLM_WORKER_COLLECTIVES_LOCAL_GROUP_H_
#define DDLM_WORKER_COLLECTIVES_LOCAL_GROUP_H_

// Test helper: runs one Gloo group of `world_size` ranks as threads of this process
// (c10d's tests do the same), over 127.0.0.1 and an in-process rendezvous store.
// `body(rank, collective)` runs on each rank's thread; the call returns when all have
// finished. A rank that cannot join fails the calling test.

#include <functional>
#include <string>

#include "absl/time/time.h"
#include "common/base/key_value_store.h"
#include "worker/collectives/collective.h"

namespace ddlm::testing {

using RankBody = std::function<void(int rank, Collective& collective)>;

void RunOnLocalGlooGroup(int world_size, const RankBody& body, absl::Duration timeout = absl::Seconds(30));

// The same with a given store (not owned) and key prefix, for tests of several groups.
void RunOnLocalGlooGroup(KeyValueStore* store, const std::string& prefix, int world_size, const RankBody& body,
                         absl::Duration timeout = absl::Seconds(30));

}  // namespace ddlm::testing

#endif  // DDLM_WORKER_COLLECTIVES_LOCAL_GROUP_H_
