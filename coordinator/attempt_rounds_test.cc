#include "coordinator/attempt_rounds.h"

#include <cmath>

#include "gtest/gtest.h"

namespace ddlm {
namespace {

TrainingMetrics Metrics(int epoch, int64_t batch, double loss, double tokens_per_second, double ms) {
  TrainingMetrics m;
  m.set_epoch(epoch);
  m.set_batch(batch);
  m.set_loss(loss);
  m.set_tokens_per_second(tokens_per_second);
  m.set_ms_per_batch(ms);
  m.set_allreduce_ms_per_batch(ms / 10);
  return m;
}

TEST(AttemptRoundsTest, MetricsAreCombinedOnceEveryRankReported) {
  AttemptRounds rounds(2);
  auto first = rounds.ReportMetrics(0, Metrics(1, 9, 2.0, 100, 40));
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(first->has_value());
  EXPECT_FALSE(rounds.ReportMetrics(0, Metrics(1, 9, 2.0, 100, 40))->has_value());   // Repeated.
  EXPECT_FALSE(rounds.ReportMetrics(1, Metrics(1, 19, 9.0, 100, 40))->has_value());  // Another round.
  auto done = rounds.ReportMetrics(1, Metrics(1, 9, 4.0, 150, 55));
  ASSERT_TRUE(done.ok() && done->has_value());
  EXPECT_DOUBLE_EQ((*done)->loss(), 3.0);  // Mean over ranks.
  EXPECT_DOUBLE_EQ((*done)->ppl(), std::exp(3.0));
  EXPECT_DOUBLE_EQ((*done)->tokens_per_second(), 250);       // Summed.
  EXPECT_DOUBLE_EQ((*done)->ms_per_batch(), 55);             // The slowest.
  EXPECT_DOUBLE_EQ((*done)->allreduce_ms_per_batch(), 5.5);  // The slowest.
  EXPECT_EQ(rounds.ReportMetrics(2, Metrics(1, 9, 1, 1, 1)).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(AttemptRoundsTest, AnEvaluationSumsExactlyOverRanksAndKeepsItsDecision) {
  AttemptRounds rounds(2);
  EXPECT_FALSE(rounds.ReportEvaluation(0, VALID, 1, 100, 100, 1.5)->has_value());
  EXPECT_FALSE(rounds.ReportEvaluation(0, VALID, 1, 100, 100, 1.5)->has_value());  // Counted once.
  EXPECT_FALSE(rounds.Decision(VALID, 1).has_value());
  auto done = rounds.ReportEvaluation(1, VALID, 1, 900, 300, 2.5);
  ASSERT_TRUE(done.ok() && done->has_value());
  EXPECT_DOUBLE_EQ((*done)->loss, 2.5);  // (100 + 900) / (100 + 300), not the mean of 1 and 3.
  EXPECT_EQ((*done)->tokens, 400);
  EXPECT_DOUBLE_EQ((*done)->seconds, 2.5);
  EvaluationDecision d;
  d.set_loss(2.5);
  rounds.Decide(VALID, 1, d);
  ASSERT_TRUE(rounds.Decision(VALID, 1).has_value());
  EXPECT_DOUBLE_EQ(rounds.Decision(VALID, 1)->loss(), 2.5);
  EXPECT_FALSE(rounds.Decision(TEST, 1).has_value());
  EXPECT_FALSE(rounds.ReportEvaluation(1, VALID, 1, 900, 300, 2.5)->has_value());  // Already done.
}

TEST(AttemptRoundsTest, ValidationKeepsTheBestOrAnneals) {
  ValidationOutcome first = DecideAfterValidation(5.0, std::nullopt, 20, 4);
  EXPECT_TRUE(first.best);
  EXPECT_DOUBLE_EQ(first.lr, 20);
  ValidationOutcome better = DecideAfterValidation(4.9, 5.0, 20, 4);
  EXPECT_TRUE(better.best);
  EXPECT_DOUBLE_EQ(better.lr, 20);
  ValidationOutcome worse = DecideAfterValidation(5.0, 4.9, 20, 4);  // Equal or worse: anneal.
  EXPECT_FALSE(worse.best);
  EXPECT_DOUBLE_EQ(worse.lr, 5);
}

}  // namespace
}  // namespace ddlm
