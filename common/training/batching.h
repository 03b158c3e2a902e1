#ifndef DDLM_COMMON_TRAINING_BATCHING_H_
#define DDLM_COMMON_TRAINING_BATCHING_H_

// word_language_model's batchify/get_batch. A batchified tensor is [rows, batch]:
// column j is one contiguous token stream, so a recurrent state carried from one
// bptt window to the next stays within its own stream.

#include <cstdint>
#include <memory>
#include <vector>

#include <torch/torch.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/base/token_file.h"

namespace ddlm {

// Trims `ids` to a multiple of `batch` and lays it out as [ids.size() / batch, batch],
// column-major in the stream: column j holds ids[j*rows, (j+1)*rows).
torch::Tensor Batchify(const std::vector<int64_t>& ids, int64_t batch);
torch::Tensor Batchify(const torch::Tensor& ids, int64_t batch);
// The same layout as a view of `ids` (of any integer type), without a copy: what a
// mapped shard is batched as (GetBatch copies each window out as int64).
torch::Tensor BatchifyView(const torch::Tensor& ids, int64_t batch);

// A token file's ids as a tensor over its mapping, without a copy: int32 for 4-byte
// ids, int16 for 2-byte ones (LibTorch 1.13 has no uint16: GetBatch reads an int16 id
// as unsigned). The tensor keeps `file` mapped. Little-endian hosts only.
torch::Tensor MappedIds(std::shared_ptr<const TokenFile> file);

struct Batch {
  torch::Tensor data;     // [seq_len, batch], int64.
  torch::Tensor targets;  // [seq_len * batch], int64: data shifted by one row, flattened.
};

// The window starting at row i: seq_len = min(bptt, rows - 1 - i).
Batch GetBatch(const torch::Tensor& source, int64_t i, int64_t bptt);

// INVALID_ARGUMENT unless `source` (batchified split `name`) has at least one window,
// i.e. two rows: a split of fewer than 2 * batch tokens cannot train or evaluate.
absl::Status CheckHasBatches(const torch::Tensor& source, absl::string_view name);

// Number of windows in one pass over `source` (i = 0, bptt, 2*bptt, ... < rows - 1).
int64_t NumBatches(const torch::Tensor& source, int64_t bptt);

}  // namespace ddlm

#endif  // DDLM_COMMON_TRAINING_BATCHING_H_
