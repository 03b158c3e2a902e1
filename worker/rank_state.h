#ifndef DDLM_WORKER_RANK_STATE_H_
#define DDLM_WORKER_RANK_STATE_H_

// One checkpoint for a data-parallel job. Parameters, optimizer state, position and
// learning rate are identical on every rank, but two things are not: the generator
// state ("rng/cpu": each rank draws its own dropout masks) and, mid-epoch, the
// recurrent state ("hidden/<i>": each rank carries its own batch columns). Rank 0's
// checkpoint stores the other ranks' copies as "rank/<r>/rng/cpu" and
// "rank/<r>/hidden/<i>", so a resumed job continues every rank exactly.

#include "absl/status/statusor.h"
#include "common/training/checkpoint.h"
#include "worker/collectives/collective.h"

namespace ddlm {

// Collective: every rank calls it with its own checkpoint (same position); on rank 0,
// `checkpoint` gains the other ranks' rank-local tensors.
absl::Status GatherRankState(Collective& collective, Checkpoint* checkpoint);

// The checkpoint as rank `rank` should load it: its own rank-local tensors under the
// plain names, the "rank/..." copies removed. FAILED_PRECONDITION if the checkpoint
// holds no state for `rank` (written by a job with fewer workers).
absl::StatusOr<Checkpoint> CheckpointForRank(Checkpoint checkpoint, int rank);

// The checkpoint for a rank that the job did not have when it was written (resumed on
// more workers), at an epoch's start: the shared state, with this process's generators
// as they are now (seeded for the rank) as its own. FAILED_PRECONDITION for a
// mid-epoch checkpoint (its recurrent state belongs to the old sharding).
absl::StatusOr<Checkpoint> CheckpointForNewRank(Checkpoint checkpoint, const torch::Device& device);

}  // namespace ddlm

#endif  // DDLM_WORKER_RANK_STATE_H_
