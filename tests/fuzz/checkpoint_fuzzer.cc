// Fuzz target: the checkpoint reader, as the coordinator verifies an upload and as a
// worker or ddlm_generate reads a file: framing, header, tensor index, CRC-32. Each input
// is read twice: as it is, and with its trailer set to its CRC-32, so that a mutation
// reaches the framing, header and tensor-index checks behind the checksum instead of
// stopping at it. Property: whatever parses encodes again to a file that parses to the
// same header and the same tensor bytes.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/strings/string_view.h"
#include "common/base/file_io.h"
#include "common/training/checkpoint.h"
#include "coordinator/checkpoint_store.h"

namespace {

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "checkpoint_fuzzer: property failed: %s\n", what);
  std::abort();
}

void CheckRoundTrip(const ddlm::Checkpoint& parsed) {
  absl::StatusOr<std::string> again = ddlm::SerializeCheckpoint(parsed);
  if (!again.ok()) Fail("a parsed checkpoint does not encode again");
  absl::StatusOr<ddlm::Checkpoint> reparsed = ddlm::ParseCheckpoint(*again, "again");
  if (!reparsed.ok()) Fail("a re-encoded checkpoint does not parse");
  ddlm::CheckpointHeader a = parsed.header, b = reparsed->header;
  a.clear_tensors();  // The index is rebuilt from the tensors on encoding.
  b.clear_tensors();
  if (a.SerializeAsString() != b.SerializeAsString()) Fail("the header changed through a round trip");
  if (parsed.tensors.size() != reparsed->tensors.size()) Fail("tensors were lost or added through a round trip");
  for (const auto& [name, tensor] : parsed.tensors) {
    auto it = reparsed->tensors.find(name);
    if (it == reparsed->tensors.end()) Fail("a tensor's name changed through a round trip");
    const torch::Tensor& other = it->second;
    if (tensor.scalar_type() != other.scalar_type() || tensor.sizes() != other.sizes() ||
        tensor.nbytes() != other.nbytes() ||
        (tensor.nbytes() > 0 && std::memcmp(tensor.data_ptr(), other.data_ptr(), tensor.nbytes()) != 0)) {
      Fail("a tensor's dtype, shape or bytes changed through a round trip");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  (void)ddlm::ParseCheckpoint(bytes, "fuzz");
  ddlm::CheckpointHeader header;
  (void)ddlm::DescribeUpload(bytes, 1, "fuzz", &header);
  if (size < 4) return 0;
  std::string fixed(bytes.substr(0, size - 4));
  const uint32_t crc = ddlm::Crc32(fixed);
  for (int i = 0; i < 4; ++i) fixed.push_back(static_cast<char>((crc >> (8 * i)) & 0xFF));
  absl::StatusOr<ddlm::Checkpoint> parsed = ddlm::ParseCheckpoint(fixed, "fuzz");
  (void)ddlm::DescribeUpload(fixed, 1, "fuzz", &header);
  if (parsed.ok()) CheckRoundTrip(*parsed);
  return 0;
}
