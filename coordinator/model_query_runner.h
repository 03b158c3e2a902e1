#ifndef DDLM_COORDINATOR_MODEL_QUERY_RUNNER_H_
#define DDLM_COORDINATOR_MODEL_QUERY_RUNNER_H_

// JobService's model queries (Generate, GenerateStream, ScoreText, Attention), kept off
// the control plane's critical path: they run without the Coordinator's lock, at most
// `max_running` at once over all four (a request beyond that is RESOURCE_EXHAUSTED at
// once rather than queued behind seconds of work), within `limits`. Each reads its
// checkpoint and answers with common/inference/model_queries.h, which ddlm_generate uses
// too: the same request gives the same answer from both.
//
// Threading: thread-safe. A query runs on the caller's thread; LibTorch's intra-op pool
// is the process's (ddlm_coordinator keeps it at one thread).

#include <functional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/inference/model_queries.h"
#include "proto/job_service.pb.h"

namespace ddlm {

struct ModelQueryOptions {
  int max_running = 2;
  QueryLimits limits;
  // Tests only: called while a query holds its slot, before it reads the checkpoint.
  std::function<void()> while_running_for_testing;
};

class ModelQueryRunner {
 public:
  explicit ModelQueryRunner(ModelQueryOptions options) : options_(std::move(options)) {}

  const QueryLimits& limits() const { return options_.limits; }

  // Each answers from the checkpoint file at `path` (`checkpoint_id` goes into the
  // answer). The request must have passed its Check* (model_queries.h).
  // RESOURCE_EXHAUSTED when max_running queries are under way; the file's own errors
  // (NOT_FOUND, DATA_LOSS) otherwise; INTERNAL naming LibTorch's error if the model
  // fails (e.g. a checkpoint whose weights are NaN).
  absl::StatusOr<GenerateResponse> Generate(const std::string& path, const std::string& checkpoint_id,
                                            const GenerateRequest& request, const GenerateSink& sink = nullptr)
      ABSL_LOCKS_EXCLUDED(mu_);
  // `text` gives the text to score (the request's, or its file's contents), called
  // once the query holds its slot, so that a request turned away reads no file.
  using TextSource = std::function<absl::StatusOr<std::string>()>;
  absl::StatusOr<ScoreTextResponse> Score(const std::string& path, const std::string& checkpoint_id,
                                          const ScoreTextRequest& request, const TextSource& text)
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<AttentionResponse> Attention(const std::string& path, const std::string& checkpoint_id,
                                              const AttentionRequest& request) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // Takes a slot and loads the model; the slot is freed when `slot` is destroyed.
  struct Slot {
    ModelQueryRunner* self = nullptr;
    Slot() = default;
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot();
  };
  absl::StatusOr<TextModel> Acquire(const std::string& path, Slot* slot) ABSL_LOCKS_EXCLUDED(mu_);

  const ModelQueryOptions options_;
  absl::Mutex mu_;
  int running_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace ddlm

#endif  // DDLM_COORDINATOR_MODEL_QUERY_RUNNER_H_
