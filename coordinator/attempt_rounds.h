#ifndef DDLM_COORDINATOR_ATTEMPT_ROUNDS_H_
#define DDLM_COORDINATOR_ATTEMPT_ROUNDS_H_

// The rounds of one attempt in which every rank reports and the coordinator acts once
// all have:
//
//   - metrics: each log interval's training loss, combined into one training event
//     (loss: mean over ranks; tokens/s: summed; ms/batch: the slowest rank's);
//   - evaluation barriers: each epoch's validation (and the final test) loss, summed
//     exactly over ranks (sum of losses / sum of tokens), decided once: the job's
//     best/anneal rule for validation, and the same decision answered to every rank.
//
// A rank that reports a round twice (a retried call) is counted once.
//
// Threading: not thread-safe; the Coordinator calls it under its mutex.

#include <cstdint>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/validation_rule.h"  // DecideAfterValidation: the coordinator decides.
#include "proto/job.pb.h"
#include "proto/worker_service.pb.h"

namespace ddlm {

class AttemptRounds {
 public:
  AttemptRounds() = default;
  explicit AttemptRounds(int world) : world_(world) {}

  // The combined metrics once `rank`'s report completes the round for (epoch, batch);
  // nullopt until then (and for a repeated report). INVALID_ARGUMENT for a rank
  // outside the world.
  absl::StatusOr<std::optional<TrainingMetrics>> ReportMetrics(int rank, const TrainingMetrics& metrics);

  // A completed evaluation round: loss = sum of losses / sum of tokens.
  struct Evaluation {
    double loss = 0;
    int64_t tokens = 0;
    double seconds = 0;  // The slowest rank's.
  };
  // Records `rank`'s sums for (split, epoch). Returns the round's totals if this report
  // completed it (the caller then decides it with Decide), nullopt otherwise.
  absl::StatusOr<std::optional<Evaluation>> ReportEvaluation(int rank, Split split, int32_t epoch, double loss_sum,
                                                             int64_t tokens, double seconds);
  void Decide(Split split, int32_t epoch, EvaluationDecision decision);
  // The decision of (split, epoch), once made.
  std::optional<EvaluationDecision> Decision(Split split, int32_t epoch) const;

 private:
  struct MetricsRound {
    std::vector<bool> reported;
    int count = 0;
    TrainingMetrics sum;
  };
  struct EvaluationRound {
    std::vector<bool> reported;
    int count = 0;
    Evaluation sum;
    std::optional<EvaluationDecision> decision;
  };
  absl::Status CheckRank(int rank) const;

  int world_ = 0;
  std::map<std::pair<int32_t, int64_t>, MetricsRound> metrics_;     // (epoch, batch); open rounds.
  std::map<std::pair<int, int32_t>, EvaluationRound> evaluations_;  // (split, epoch).
};

}  // namespace ddlm

#endif  // DDLM_COORDINATOR_ATTEMPT_ROUNDS_H_
