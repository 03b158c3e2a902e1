#ifndef DDLM_COMMON_TRAINING_CHECKPOINT_H_
#define DDLM_COMMON_TRAINING_CHECKPOINT_H_

// ddlm checkpoint files as LibTorch tensors. The file format (framing, CRC, tensor
// index) is common/base/checkpoint_format.h's, which the control plane uses without LibTorch.
//
// The header (proto/checkpoint.proto) holds the job spec, the vocabulary and its
// fingerprint, the training position, learning rate and best validation loss, and an
// index of the tensor area: model parameters ("param/<name>"), recurrent state
// ("hidden/<i>"), the CPU generator state ("rng/cpu"), on a GPU also the CUDA
// generator's ("rng/cuda"), and the optimizer's LibTorch
// archive ("optimizer/archive"). One checkpoint is a self-contained file, so it can be
// streamed in chunks and verified at the far end by its trailing CRC.
//
// Thread-compatible: free functions; a Checkpoint value is not shared across threads.

#include <map>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/base/checkpoint_format.h"  // kCheckpointVersion, MaxCheckpointBytes.
#include "common/training/model.h"
#include "proto/checkpoint.pb.h"

namespace ddlm {

struct Checkpoint {
  // Everything but `tensors`, which Serialize fills in from `tensors` below.
  CheckpointHeader header;
  std::map<std::string, torch::Tensor> tensors;  // Contiguous CPU tensors.
};

// Encodes a checkpoint to bytes. INVALID_ARGUMENT for an unsupported dtype.
absl::StatusOr<std::string> SerializeCheckpoint(const Checkpoint& checkpoint);

// Decodes and verifies bytes. DATA_LOSS (naming `source`) for a truncated file, a bad
// magic number, a CRC mismatch or an inconsistent tensor index; FAILED_PRECONDITION
// for an unknown format version.
absl::StatusOr<Checkpoint> ParseCheckpoint(absl::string_view bytes, absl::string_view source);

// Atomic write (temp file, fsync, rename) and verified read.
absl::Status WriteCheckpointFile(const std::string& path, const Checkpoint& checkpoint);
absl::StatusOr<Checkpoint> ReadCheckpointFile(const std::string& path);

// Adds the model's parameters (and `state`, if given) to `checkpoint`, copied to the
// host from whatever device they are on.
void CaptureModel(LanguageModelImpl& model, const RecurrentState* state, Checkpoint* checkpoint);

// Copies parameters from `checkpoint` into `model` (on any device). FAILED_PRECONDITION naming the
// tensor if a parameter is missing, extra, or of another shape or dtype.
absl::Status RestoreModel(const Checkpoint& checkpoint, LanguageModelImpl& model);

// Recurrent state saved by CaptureModel, on the CPU (empty if none was saved).
RecurrentState RestoreState(const Checkpoint& checkpoint);

// The default generators' states (dropout masks, sampling): the CPU's as "rng/cpu" and,
// for a CUDA `device`, that device's as "rng/cuda". Restoring on a CUDA device sets its
// generator when the checkpoint has "rng/cuda"; on the CPU "rng/cuda" is ignored, so a
// checkpoint moves between CPU and GPU (with other dropout masks from then on).
void CaptureRng(const torch::Device& device, Checkpoint* checkpoint);

absl::Status RestoreRng(const Checkpoint& checkpoint, const torch::Device& device);

// A LibTorch optimizer's state as "optimizer/archive".
absl::Status CaptureOptimizer(torch::optim::Optimizer& optimizer, Checkpoint* checkpoint);
// Restoring puts the optimizer's state tensors on `device` (its parameters' device).
absl::Status RestoreOptimizer(const Checkpoint& checkpoint, const torch::Device& device,
                              torch::optim::Optimizer& optimizer);

// FAILED_PRECONDITION unless `checkpoint` was made with this vocabulary and this model
// shape (type, sizes, tying), naming the first difference.
absl::Status CheckCompatible(const Checkpoint& checkpoint, uint64_t vocabulary_fingerprint, int64_t vocabulary_size,
                             const ModelConfig& model);

}  // namespace ddlm

#endif  // DDLM_COMMON_TRAINING_CHECKPOINT_H_
