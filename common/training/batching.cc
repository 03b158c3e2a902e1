#include "common/training/batching.h"

#include "absl/strings/str_cat.h"

namespace ddlm {

torch::Tensor BatchifyView(const torch::Tensor& ids, int64_t batch) {
  TORCH_CHECK(batch > 0, "batch size must be positive");
  const int64_t rows = ids.size(0) / batch;
  return ids.narrow(0, 0, rows * batch).view({batch, rows}).t();
}

torch::Tensor Batchify(const torch::Tensor& ids, int64_t batch) { return BatchifyView(ids, batch).contiguous(); }

torch::Tensor Batchify(const std::vector<int64_t>& ids, int64_t batch) {
  torch::Tensor t =
      torch::from_blob(const_cast<int64_t*>(ids.data()), {static_cast<int64_t>(ids.size())}, torch::kInt64);
  return Batchify(t, batch).clone();  // Own the memory: `ids` may go away.
}

torch::Tensor MappedIds(std::shared_ptr<const TokenFile> file) {
  static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "token files are mapped as little-endian ids");
  void* ids = const_cast<void*>(file->raw_ids());
  const int64_t n = file->tokens();
  const auto dtype = file->width() == 4 ? torch::kInt32 : torch::kInt16;
  return torch::from_blob(
      ids, {n}, [file = std::move(file)](void*) {}, dtype);
}

Batch GetBatch(const torch::Tensor& source, int64_t i, int64_t bptt) {
  const int64_t seq_len = std::min(bptt, source.size(0) - 1 - i);
  torch::Tensor data = source.narrow(0, i, seq_len);
  torch::Tensor targets = source.narrow(0, i + 1, seq_len).reshape({-1});
  if (source.scalar_type() != torch::kLong) {  // A view of a mapped file: copied out.
    data = data.to(torch::kLong).contiguous();
    targets = targets.to(torch::kLong);
    if (source.scalar_type() == torch::kShort) {  // uint16 ids (MappedIds).
      data.bitwise_and_(0xFFFF);
      targets.bitwise_and_(0xFFFF);
    }
  }
  return Batch{data, targets};
}

absl::Status CheckHasBatches(const torch::Tensor& source, absl::string_view name) {
  if (source.size(0) >= 2) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("the ", name, " split is too small for batch size ", source.size(1),
                                                 ": it needs at least ", 2 * source.size(1), " tokens"));
}

int64_t NumBatches(const torch::Tensor& source, int64_t bptt) {
  const int64_t rows = source.size(0);
  if (rows < 2) return 0;
  return (rows - 1 + bptt - 1) / bptt;
}

}  // namespace ddlm
