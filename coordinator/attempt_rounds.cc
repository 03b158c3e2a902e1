#include "coordinator/attempt_rounds.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace ddlm {

absl::Status AttemptRounds::CheckRank(int rank) const {
  if (rank < 0 || rank >= world_) {
    return absl::InvalidArgumentError(absl::StrCat("rank ", rank, " is outside [0, ", world_, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<TrainingMetrics>> AttemptRounds::ReportMetrics(int rank, const TrainingMetrics& m) {
  if (absl::Status s = CheckRank(rank); !s.ok()) return s;
  const std::pair<int32_t, int64_t> key{m.epoch(), m.batch()};
  MetricsRound& round = metrics_[key];
  if (round.reported.empty()) round.reported.assign(world_, false);
  if (round.reported[rank]) return std::optional<TrainingMetrics>();  // A repeated report.
  round.reported[rank] = true;
  if (round.count++ == 0) {
    round.sum = m;
  } else {
    round.sum.set_loss(round.sum.loss() + m.loss());
    round.sum.set_tokens_per_second(round.sum.tokens_per_second() + m.tokens_per_second());
    round.sum.set_ms_per_batch(std::max(round.sum.ms_per_batch(), m.ms_per_batch()));
    round.sum.set_allreduce_ms_per_batch(std::max(round.sum.allreduce_ms_per_batch(), m.allreduce_ms_per_batch()));
  }
  if (round.count < world_) return std::optional<TrainingMetrics>();
  TrainingMetrics combined = round.sum;
  combined.set_loss(round.sum.loss() / static_cast<double>(world_));
  combined.set_ppl(std::exp(combined.loss()));
  metrics_.erase(key);
  return std::optional<TrainingMetrics>(combined);
}

absl::StatusOr<std::optional<AttemptRounds::Evaluation>> AttemptRounds::ReportEvaluation(int rank, Split split,
                                                                                         int32_t epoch, double loss_sum,
                                                                                         int64_t tokens,
                                                                                         double seconds) {
  if (absl::Status s = CheckRank(rank); !s.ok()) return s;
  EvaluationRound& round = evaluations_[{split, epoch}];
  if (round.reported.empty()) round.reported.assign(world_, false);
  if (round.reported[rank]) return std::optional<Evaluation>();
  round.reported[rank] = true;
  round.sum.loss += loss_sum;  // Summed here; divided once complete.
  round.sum.tokens += tokens;
  round.sum.seconds = std::max(round.sum.seconds, seconds);
  if (++round.count < world_) return std::optional<Evaluation>();
  Evaluation done = round.sum;
  done.loss = round.sum.loss / static_cast<double>(round.sum.tokens);
  return std::optional<Evaluation>(done);
}

void AttemptRounds::Decide(Split split, int32_t epoch, EvaluationDecision decision) {
  evaluations_[{split, epoch}].decision = std::move(decision);
}

std::optional<EvaluationDecision> AttemptRounds::Decision(Split split, int32_t epoch) const {
  auto it = evaluations_.find({split, epoch});
  if (it == evaluations_.end()) return std::nullopt;
  return it->second.decision;
}

}  // namespace ddlm
