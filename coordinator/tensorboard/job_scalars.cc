#include "coordinator/tensorboard/job_scalars.h"

#include <algorithm>

namespace ddlm {

std::optional<ScalarPoint> JobScalars::Add(const JobEvent& event) {
  ScalarPoint point;
  point.wall_time = absl::FromUnixMicros(event.unix_micros());
  switch (event.event_case()) {
    case JobEvent::kTraining: {
      const TrainingMetrics& m = event.training();
      batches_per_epoch_ = m.num_batches();
      point.step = (static_cast<int64_t>(m.epoch()) - 1) * m.num_batches() + m.batch() + 1;
      point.scalars = {{"train/loss", m.loss()},
                       {"train/ppl", m.ppl()},
                       {"train/lr", m.lr()},
                       {"train/tokens_per_second", m.tokens_per_second()},
                       {"train/ms_per_batch", m.ms_per_batch()},
                       {"train/allreduce_ms_per_batch", m.allreduce_ms_per_batch()}};
      break;
    }
    case JobEvent::kEpoch: {
      const EpochResult& e = event.epoch();
      // Before any training metrics (an epoch shorter than a log interval), the epoch
      // number is the only position known.
      point.step = batches_per_epoch_ > 0 ? static_cast<int64_t>(e.epoch()) * batches_per_epoch_
                                          : std::max<int64_t>(last_step_, e.epoch());
      point.scalars = {{"val/loss", e.val_loss()},
                       {"val/ppl", e.val_ppl()},
                       {"val/next_lr", e.lr()},
                       {"epoch/seconds", e.seconds()}};
      break;
    }
    case JobEvent::kTest:
      point.step = last_step_;
      point.scalars = {{"test/loss", event.test().test_loss()}, {"test/ppl", event.test().test_ppl()}};
      break;
    default: return std::nullopt;
  }
  last_step_ = point.step;
  return point;
}

}  // namespace ddlm
