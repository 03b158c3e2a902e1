#include "worker/epoch_loop.h"

#include <atomic>
#include <cmath>
#include <deque>
#include <vector>

#include "common/base/config.h"
#include "common/base/corpus.h"
#include "common/testing/quickstart_corpus.h"
#include "common/training/batching.h"
#include "gtest/gtest.h"

namespace ddlm {
namespace {

const Corpus& Quickstart() { return QuickstartCorpus(); }

JobSpec SmallSpec(int epochs) {
  JobSpec spec;
  spec.mutable_data()->set_path("configs/quickstart_data");
  spec.mutable_model()->set_type(LSTM);
  spec.mutable_model()->set_emsize(16);
  spec.mutable_model()->set_nhid(16);
  spec.mutable_model()->set_nlayers(1);
  spec.mutable_schedule()->set_epochs(epochs);
  spec.mutable_schedule()->set_max_batches_per_epoch(4);
  spec.mutable_schedule()->set_log_interval(100);
  ApplyDefaults(&spec);
  return spec;
}

EvaluationDecision Decision(bool best, double lr) {
  EvaluationDecision d;
  d.set_best(best);
  d.set_lr(lr);
  return d;
}

// Decides what it was told to, in order, and records what it was asked.
class ScriptedArbiter : public ValidationArbiter {
 public:
  struct Call {
    Split split;
    int32_t epoch;
    EvalResult local;
  };
  absl::StatusOr<EvaluationDecision> Decide(Split split, int32_t epoch, const EvalResult& local, double) override {
    calls.push_back({split, epoch, local});
    if (script.empty()) return absl::AbortedError("the attempt was cancelled");
    EvaluationDecision d = script.front();
    script.pop_front();
    d.set_loss(local.mean_loss());
    return d;
  }
  std::deque<EvaluationDecision> script;
  std::vector<Call> calls;
};

std::unique_ptr<Trainer> MakeTrainer(const JobSpec& spec) {
  absl::StatusOr<std::unique_ptr<Trainer>> trainer = Trainer::Create(spec, Quickstart().dictionary);
  EXPECT_TRUE(trainer.ok()) << trainer.status();
  return std::move(*trainer);
}

TEST(LocalValidationArbiterTest, DecidesByWordLanguageModelsRuleFromTheTrainersState) {
  JobSpec spec = SmallSpec(3);
  spec.mutable_optimizer()->set_lr(20);
  spec.mutable_optimizer()->set_anneal_factor(4);
  std::unique_ptr<Trainer> trainer = MakeTrainer(spec);
  LocalValidationArbiter arbiter(trainer.get());
  auto decide = [&](double loss_sum) {
    absl::StatusOr<EvaluationDecision> d = arbiter.Decide(VALID, 1, EvalResult{loss_sum, 10}, 0);
    EXPECT_TRUE(d.ok());
    trainer->ApplyValidation(d->loss(), ValidationOutcome{d->best(), d->lr()});
    return *d;
  };
  EvaluationDecision first = decide(50);
  EXPECT_DOUBLE_EQ(first.loss(), 5.0);
  EXPECT_EQ(first.tokens(), 10);
  EXPECT_TRUE(first.best());
  EXPECT_DOUBLE_EQ(first.lr(), 20);
  EXPECT_TRUE(decide(40).best());
  EvaluationDecision worse = decide(45);
  EXPECT_FALSE(worse.best());
  EXPECT_DOUBLE_EQ(worse.lr(), 5);  // Annealed by 4.
  EXPECT_DOUBLE_EQ(trainer->lr(), 5);
  EXPECT_DOUBLE_EQ(*trainer->best_val_loss(), 4.0);
  // A test result is only combined: not best, no learning rate.
  absl::StatusOr<EvaluationDecision> tested = arbiter.Decide(TEST, 3, EvalResult{7, 2}, 0);
  EXPECT_DOUBLE_EQ(tested->loss(), 3.5);
  EXPECT_FALSE(tested->best());
  EXPECT_EQ(tested->lr(), 0);
}

TEST(EpochLoopTest, AppliesTheArbitersDecisionsKeepsTheBestWeightsAndTestsThem) {
  const JobSpec spec = SmallSpec(3);
  std::unique_ptr<Trainer> trainer = MakeTrainer(spec);
  ScriptedArbiter arbiter;
  arbiter.script = {Decision(true, 20), Decision(false, 5), Decision(false, 1.25), Decision(false, 0)};
  std::vector<int32_t> ends;
  std::vector<torch::Tensor> best_at_epoch_1;
  EpochLoopOptions options;
  options.eval_batches = 2;
  options.on_epoch_end = [&](const EpochEnd& end) {
    ends.push_back(end.epoch);
    EXPECT_EQ(end.summary.batches, 4);
    EXPECT_GE(end.eval_seconds, 0);
    // Applied before the hook: the position moved on and the rate is the decision's.
    EXPECT_EQ(trainer->position().epoch(), end.epoch + 1);
    EXPECT_DOUBLE_EQ(trainer->lr(), end.decision.lr());
    if (end.epoch == 1) {
      for (const torch::Tensor& p : trainer->model().parameters()) best_at_epoch_1.push_back(p.detach().clone());
    }
    return absl::OkStatus();
  };
  EpochLoop loop(trainer.get(), &arbiter, options);
  EXPECT_FALSE(loop.has_best());
  torch::Tensor train = Batchify(Quickstart().train, 20);
  torch::Tensor valid = Batchify(Quickstart().valid, 10);
  absl::StatusOr<bool> finished = loop.Train(train, valid);
  ASSERT_TRUE(finished.ok()) << finished.status();
  EXPECT_TRUE(*finished);
  EXPECT_EQ(ends, (std::vector<int32_t>{1, 2, 3}));
  ASSERT_EQ(arbiter.calls.size(), 3u);
  EXPECT_EQ(arbiter.calls[2].split, VALID);
  EXPECT_EQ(arbiter.calls[2].epoch, 3);
  EXPECT_EQ(arbiter.calls[2].local.tokens, 2 * 35 * 10);  // Two bptt windows of the valid split.
  EXPECT_DOUBLE_EQ(trainer->lr(), 1.25);
  EXPECT_DOUBLE_EQ(*trainer->best_val_loss(), arbiter.calls[0].local.mean_loss());

  // The weights after epoch 3 differ from epoch 1's; the best (epoch 1) come back.
  ASSERT_TRUE(loop.has_best());
  EXPECT_FALSE(trainer->model().parameters()[0].equal(best_at_epoch_1[0]));
  ASSERT_TRUE(loop.RestoreBest());
  for (size_t i = 0; i < best_at_epoch_1.size(); ++i) {
    EXPECT_TRUE(trainer->model().parameters()[i].equal(best_at_epoch_1[i])) << "parameter " << i;
  }
  absl::StatusOr<EvaluationDecision> tested = loop.Test(Batchify(Quickstart().test, 10), 3);
  ASSERT_TRUE(tested.ok());
  EXPECT_EQ(arbiter.calls.back().split, TEST);
  EXPECT_TRUE(std::isfinite(tested->loss()));
}

TEST(EpochLoopTest, WithoutKeepBestNoSecondCopyIsKept) {
  std::unique_ptr<Trainer> trainer = MakeTrainer(SmallSpec(1));
  ScriptedArbiter arbiter;
  arbiter.script = {Decision(true, 20)};
  EpochLoopOptions options;
  options.keep_best = false;  // ddlm_train: its best model goes to a file instead.
  EpochLoop loop(trainer.get(), &arbiter, options);
  absl::StatusOr<bool> finished = loop.Train(Batchify(Quickstart().train, 20), Batchify(Quickstart().valid, 10));
  ASSERT_TRUE(finished.ok()) << finished.status();
  EXPECT_TRUE(*finished);
  EXPECT_DOUBLE_EQ(*trainer->best_val_loss(), arbiter.calls[0].local.mean_loss());  // Still applied.
  EXPECT_FALSE(loop.has_best());
  EXPECT_FALSE(loop.RestoreBest());
}

TEST(EpochLoopTest, AStopEndsItWhereItStoodAndAnErrorEndsItWithThatError) {
  torch::Tensor train = Batchify(Quickstart().train, 20);
  torch::Tensor valid = Batchify(Quickstart().valid, 10);
  {
    std::unique_ptr<Trainer> trainer = MakeTrainer(SmallSpec(2));
    ScriptedArbiter arbiter;
    std::atomic<bool> stop{true};
    EpochLoopOptions options;
    options.stop = &stop;
    EpochLoop loop(trainer.get(), &arbiter, options);
    absl::StatusOr<bool> finished = loop.Train(train, valid);
    ASSERT_TRUE(finished.ok());
    EXPECT_FALSE(*finished);
    EXPECT_EQ(trainer->position().epoch(), 1);
    EXPECT_TRUE(arbiter.calls.empty());
    EXPECT_FALSE(loop.RestoreBest());  // Nothing kept: nothing changes.
  }
  {
    std::unique_ptr<Trainer> trainer = MakeTrainer(SmallSpec(2));
    ScriptedArbiter arbiter;  // Nothing scripted: the arbiter answers ABORTED.
    EpochLoop loop(trainer.get(), &arbiter, EpochLoopOptions{});
    EXPECT_EQ(loop.Train(train, valid).status().code(), absl::StatusCode::kAborted);
    EXPECT_EQ(trainer->position().epoch(), 1);  // Nothing applied.
  }
  {
    std::unique_ptr<Trainer> trainer = MakeTrainer(SmallSpec(2));
    ScriptedArbiter arbiter;
    arbiter.script = {Decision(true, 20), Decision(true, 20)};
    EpochLoopOptions options;
    options.on_epoch_end = [](const EpochEnd&) { return absl::DataLossError("disk full"); };
    EpochLoop loop(trainer.get(), &arbiter, options);
    EXPECT_EQ(loop.Train(train, valid).status().code(), absl::StatusCode::kDataLoss);
    EXPECT_EQ(arbiter.calls.size(), 1u);  // It stopped after the first epoch.
  }
}

}  // namespace
}  // namespace ddlm
