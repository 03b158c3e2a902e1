#ifndef DDLM_COORDINATOR_TENSORBOARD_CRC32C_H_
#define DDLM_COORDINATOR_TENSORBOARD_CRC32C_H_

// CRC-32C (Castagnoli), as TFRecord framing checks its lengths and payloads with: zlib
// has only the other CRC-32, and Debian packages no CRC-32C library for C++.

#include <cstdint>

#include "absl/strings/string_view.h"

namespace ddlm {

uint32_t Crc32c(absl::string_view data);

// TFRecord stores each CRC "masked" (rotated and offset), so that a CRC of data that
// itself holds CRCs does not degenerate.
uint32_t MaskedCrc32c(absl::string_view data);

}  // namespace ddlm

#endif  // DDLM_COORDINATOR_TENSORBOARD_CRC32C_H_
