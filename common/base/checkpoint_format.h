#ifndef DDLM_COMMON_BASE_CHECKPOINT_FORMAT_H_
#define DDLM_COMMON_BASE_CHECKPOINT_FORMAT_H_

// The ddlm checkpoint file format, without LibTorch: what the control plane needs to
// verify and describe a checkpoint, and common/training/checkpoint.h builds on to turn one into
// tensors. Layout (all integers little-endian):
//
//   "DDLMCKPT" | u32 version | u64 header length | CheckpointHeader (proto) |
//   tensor area | u32 CRC-32 of every byte before it
//
// The header (proto/checkpoint.proto) indexes the tensor area: each tensor's name,
// dtype, shape, offset and length.
//
// Thread-compatible: free functions on values.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/checkpoint.pb.h"
#include "proto/config.pb.h"

namespace ddlm {

inline constexpr uint32_t kCheckpointVersion = 1;

// Bytes per element of `dtype`; 0 for an unknown one.
uint64_t DTypeSize(TensorDType dtype);

// A verified checkpoint file, its tensors still bytes: views into the file's bytes.
struct CheckpointView {
  CheckpointHeader header;
  struct Tensor {
    TensorEntry entry;  // A copy of its index entry in `header`.
    absl::string_view bytes;
  };
  std::vector<Tensor> tensors;  // In the header's order; names unique.
};

// Verifies `bytes` as a checkpoint file: DATA_LOSS (naming `source`) for a truncated
// file, a bad magic number, a CRC mismatch, a header that does not parse, or a tensor
// index entry with an unknown dtype, a bad shape, a size that does not match, bytes
// outside the tensor area or a repeated name; FAILED_PRECONDITION for another format
// version. The view refers into `bytes`, which must outlive it.
absl::StatusOr<CheckpointView> ParseCheckpointView(absl::string_view bytes, absl::string_view source);

// One tensor to write: its index entry's name, dtype and shape, and its bytes (the
// entry's offset and length are filled in).
struct CheckpointTensorBytes {
  std::string name;
  TensorDType dtype = DTYPE_UNSPECIFIED;
  std::vector<int64_t> shape;
  absl::string_view bytes;
};

// A checkpoint file of `header` (its tensor index replaced) and `tensors`, in order.
// INVALID_ARGUMENT if a tensor's bytes do not match its dtype and shape, or a name
// repeats.
absl::StatusOr<std::string> EncodeCheckpoint(CheckpointHeader header,
                                             const std::vector<CheckpointTensorBytes>& tensors);

// The most bytes a checkpoint of a `world`-rank job of `spec` over a vocabulary of
// `ntoken` words (`vocabulary_bytes` of text) can take: weights and AdamW's two moments,
// every rank's generators and recurrent state, the header, and framing slack. An upload
// above it is not a checkpoint of that job, and is refused before it is read whole.
int64_t MaxCheckpointBytes(const JobSpec& spec, int64_t ntoken, int64_t vocabulary_bytes, int world);

}  // namespace ddlm

#endif  // DDLM_COMMON_BASE_CHECKPOINT_FORMAT_H_
