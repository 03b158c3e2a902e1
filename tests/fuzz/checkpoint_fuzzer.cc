// Fuzz target: the checkpoint reader, as the coordinator verifies an upload and as a
// worker or ddlm_generate reads a file: framing, header, tensor index, CRC-32.

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "common/training/checkpoint.h"
#include "coordinator/checkpoint_store.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  (void)ddlm::ParseCheckpoint(bytes, "fuzz");
  ddlm::CheckpointHeader header;
  (void)ddlm::DescribeUpload(bytes, 1, "fuzz", &header);
  return 0;
}
