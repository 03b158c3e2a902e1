#ifndef DDLM_WORKER_COLLECTIVES_GLOO_COLLECTIVE_H_
#define DDLM_WORKER_COLLECTIVES_GLOO_COLLECTIVE_H_

// The CPU Collective: Gloo over TCP (Debian's libgloo, /usr/include/gloo).
//
// Rendezvous: every rank calls CreateGlooCollective with the same world_size and
// store_prefix and a distinct rank. Each rank binds a TCP device to options.host,
// publishes its pair addresses in `store` under options.store_prefix + "gloo/" and
// connects a full mesh; the call returns once every pair is connected, or fails after
// options.timeout (DEADLINE_EXCEEDED naming the missing key when a peer never
// publishes). The store is only used during the call.
//
// Collectives follow collective.h's contract. Tensors must be contiguous CPU tensors;
// AllReduceSum takes float32, Broadcast and AllGather any dtype (moved as bytes).
// Every operation is bounded by options.timeout. Errors:
//   INVALID_ARGUMENT   bad options or tensor (nothing was sent);
//   DEADLINE_EXCEEDED  a peer did not take part within the timeout;
//   UNAVAILABLE        a connection failed (a peer exited);
//   FAILED_PRECONDITION an earlier operation failed. Gloo's pairs are then in an unknown
//                      state, so on its first failure a collective drops its Gloo
//                      context, closing its connections (peers blocked in the same
//                      operation then fail at once with UNAVAILABLE instead of at their
//                      timeout), and refuses further work. Build a new one under a new
//                      store_prefix.
// Messages name the operation ("gloo AllReduceSum: ...").
//
// Threading: a collective is used from one thread at a time (Gloo runs its own I/O
// thread inside the TCP device). CreateGlooCollective may run concurrently for
// different ranks, as the tests do with one thread per rank.

#include <memory>

#include "absl/status/statusor.h"
#include "common/base/key_value_store.h"
#include "worker/collectives/collective.h"

namespace ddlm {

// `store` is not owned and must outlive the call (not the collective).
absl::StatusOr<std::unique_ptr<Collective>> CreateGlooCollective(const CollectiveOptions& options,
                                                                 KeyValueStore* store);

}  // namespace ddlm

#endif  // DDLM_WORKER_COLLECTIVES_GLOO_COLLECTIVE_H_
