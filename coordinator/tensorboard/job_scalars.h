#ifndef DDLM_COORDINATOR_TENSORBOARD_JOB_SCALARS_H_
#define DDLM_COORDINATOR_TENSORBOARD_JOB_SCALARS_H_

// Which TensorBoard scalars a job's events become, on one step axis: the training step
// (global batch count, as the workers count it).
//
//   training metrics   train/loss, train/ppl, train/lr, train/tokens_per_second,
//                      train/ms_per_batch, train/allreduce_ms_per_batch
//                      at step (epoch - 1) * batches per epoch + batch + 1
//   epoch results      val/loss, val/ppl, val/next_lr, epoch/seconds at the epoch's last step
//   test result        test/loss, test/ppl at the last step seen
//
// Threading: not thread-safe (one per job).

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "proto/job.pb.h"

namespace ddlm {

struct ScalarPoint {
  int64_t step = 0;
  absl::Time wall_time;
  std::vector<std::pair<std::string, double>> scalars;
};

class JobScalars {
 public:
  // Where a job's axis stands when its scalars are picked up midway (a coordinator that
  // restarted): the job's latest training metrics and step.
  void Resume(int64_t batches_per_epoch, int64_t last_step) {
    batches_per_epoch_ = batches_per_epoch;
    last_step_ = last_step;
  }

  // The scalars `event` adds, if any (state changes and checkpoints add none).
  std::optional<ScalarPoint> Add(const JobEvent& event);

 private:
  int64_t batches_per_epoch_ = 0;  // From the last training metrics.
  int64_t last_step_ = 0;
};

}  // namespace ddlm

#endif  // DDLM_COORDINATOR_TENSORBOARD_JOB_SCALARS_H_
