#ifndef DDLM_COORDINATOR_TEXT_GENERATOR_H_
#define DDLM_COORDINATOR_TEXT_GENERATOR_H_

// JobService.Generate's sampling, kept off the control plane's critical path: it runs
// without the Coordinator's lock, at most `max_running` at once (a request beyond that
// is RESOURCE_EXHAUSTED at once rather than queued behind seconds of sampling), for at
// most `max_words` words. The Transformer's context is cropped at the job's bptt (what
// it was trained on); recurrent models carry their state from word to word.
//
// Threading: thread-safe. Sampling runs on the caller's thread; LibTorch's intra-op
// pool is the process's (ddlm_coordinator keeps it at one thread).

#include <cstdint>
#include <functional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/training/generate.h"
#include "proto/job_service.pb.h"

namespace ddlm {

struct TextGeneratorOptions {
  int max_running = 2;
  int64_t max_words = 10000;
  // Tests only: called while a sampling holds its slot, before it reads the checkpoint.
  std::function<void()> while_running_for_testing;
};

class TextGenerator {
 public:
  explicit TextGenerator(TextGeneratorOptions options) : options_(std::move(options)) {}

  // The request's sampling options with upstream's defaults (100 words, temperature 1,
  // seed 1111). INVALID_ARGUMENT naming the field for words outside [1, max_words],
  // temperature below 1e-3 or NaN, or a negative top_k.
  absl::StatusOr<GenerateOptions> ParseRequest(const GenerateRequest& request) const;

  // Samples from the checkpoint at `path` with `options` (from ParseRequest;
  // `checkpoint_id` goes into the response). RESOURCE_EXHAUSTED when max_running
  // samplings are under way.
  absl::StatusOr<GenerateResponse> Generate(const std::string& path, const std::string& checkpoint_id,
                                            GenerateOptions options) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  const TextGeneratorOptions options_;
  absl::Mutex mu_;
  int running_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace ddlm

#endif  // DDLM_COORDINATOR_TEXT_GENERATOR_H_
