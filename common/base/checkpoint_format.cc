#include "common/base/checkpoint_format.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/base/file_io.h"
#include "common/base/model_size.h"

namespace ddlm {
namespace {

constexpr char kMagic[8] = {'D', 'D', 'L', 'M', 'C', 'K', 'P', 'T'};
constexpr size_t kPreambleSize = sizeof(kMagic) + 4 + 8;
constexpr size_t kTrailerSize = 4;

template <typename T>
void AppendLittleEndian(T value, std::string* out) {
  for (size_t i = 0; i < sizeof(T); ++i) out->push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
}

template <typename T>
T ReadLittleEndian(const char* p) {
  T value = 0;
  for (size_t i = 0; i < sizeof(T); ++i) {
    value |= static_cast<T>(static_cast<unsigned char>(p[i])) << (8 * i);
  }
  return value;
}

// The bytes a tensor of `dtype` and `shape` takes; false on a negative dimension or an
// overflow, also of the product of the dimensions counted as at least 1 (as LibTorch
// computes strides: [0, 2^62, 4] holds no byte but cannot be made; the checkpoint
// fuzzer's find).
bool TensorBytes(TensorDType dtype, const std::vector<int64_t>& shape, uint64_t* bytes) {
  uint64_t n = DTypeSize(dtype);
  uint64_t strides = 1;
  for (int64_t d : shape) {
    if (d < 0 || __builtin_mul_overflow(n, static_cast<uint64_t>(d), &n)) return false;
    if (__builtin_mul_overflow(strides, static_cast<uint64_t>(d > 0 ? d : 1), &strides) ||
        strides > static_cast<uint64_t>(INT64_MAX)) {
      return false;
    }
  }
  *bytes = n;
  return true;
}

}  // namespace

uint64_t DTypeSize(TensorDType dtype) {
  switch (dtype) {
    case FLOAT32: return 4;
    case FLOAT64: return 8;
    case INT64: return 8;
    case UINT8: return 1;
    default: return 0;
  }
}

absl::StatusOr<CheckpointView> ParseCheckpointView(absl::string_view bytes, absl::string_view source) {
  auto corrupt = [&](absl::string_view why) {
    return absl::DataLossError(absl::StrCat("checkpoint ", source, " is corrupt or truncated: ", why));
  };
  if (bytes.size() < kPreambleSize + kTrailerSize) {
    return corrupt(absl::StrCat("only ", bytes.size(), " bytes"));
  }
  if (std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) {
    return corrupt("it does not start with the DDLMCKPT magic number (not a ddlm checkpoint)");
  }
  const uint32_t stored_crc = ReadLittleEndian<uint32_t>(bytes.data() + bytes.size() - kTrailerSize);
  const uint32_t actual_crc = Crc32(bytes.substr(0, bytes.size() - kTrailerSize));
  if (stored_crc != actual_crc) {
    return corrupt(
        absl::StrCat("CRC-32 mismatch (stored ", absl::Hex(stored_crc), ", computed ", absl::Hex(actual_crc), ")"));
  }
  const uint32_t version = ReadLittleEndian<uint32_t>(bytes.data() + sizeof(kMagic));
  if (version != kCheckpointVersion) {
    return absl::FailedPreconditionError(absl::StrCat("checkpoint ", source, " has format version ", version,
                                                      "; this build reads version ", kCheckpointVersion));
  }
  const uint64_t header_size = ReadLittleEndian<uint64_t>(bytes.data() + sizeof(kMagic) + 4);
  if (header_size > bytes.size() - kPreambleSize - kTrailerSize) {
    return corrupt(absl::StrCat("header length ", header_size, " runs past the end of the file"));
  }
  if (header_size > static_cast<uint64_t>(std::numeric_limits<int>::max())) {
    return corrupt(absl::StrCat("header length ", header_size, " is implausibly large"));
  }
  CheckpointView view;
  if (!view.header.ParseFromArray(bytes.data() + kPreambleSize, static_cast<int>(header_size))) {
    return corrupt("the header does not parse");
  }
  const char* area = bytes.data() + kPreambleSize + header_size;
  const uint64_t area_size = bytes.size() - kPreambleSize - header_size - kTrailerSize;
  std::set<absl::string_view> names;
  for (const TensorEntry& entry : view.header.tensors()) {
    if (DTypeSize(entry.dtype()) == 0) return corrupt(absl::StrCat("unknown tensor dtype ", entry.dtype()));
    // The CRC only proves the file is what its writer wrote; the index is still
    // checked so that a crafted file cannot overflow or over-allocate.
    uint64_t expected = 0;
    if (!TensorBytes(entry.dtype(), std::vector<int64_t>(entry.shape().begin(), entry.shape().end()), &expected)) {
      return corrupt(absl::StrCat("tensor ", entry.name(), " has an invalid shape"));
    }
    if (entry.nbytes() != expected || expected > area_size || entry.offset() > area_size - expected) {
      return corrupt(absl::StrCat("tensor ", entry.name(), " does not fit its index entry"));
    }
    if (!names.insert(entry.name()).second) {
      return corrupt(absl::StrCat("tensor ", entry.name(), " appears twice"));
    }
    view.tensors.push_back({entry, absl::string_view(area + entry.offset(), expected)});
  }
  return view;
}

absl::StatusOr<std::string> EncodeCheckpoint(CheckpointHeader header,
                                             const std::vector<CheckpointTensorBytes>& tensors) {
  header.clear_tensors();
  uint64_t offset = 0;
  std::set<absl::string_view> names;
  for (const CheckpointTensorBytes& t : tensors) {
    if (!names.insert(t.name).second) {
      return absl::InvalidArgumentError(absl::StrCat("tensor ", t.name, " appears twice"));
    }
    uint64_t expected = 0;
    if (DTypeSize(t.dtype) == 0 || !TensorBytes(t.dtype, t.shape, &expected) || expected != t.bytes.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor ", t.name, ": ", t.bytes.size(), " bytes do not match its dtype and shape"));
    }
    TensorEntry* entry = header.add_tensors();
    entry->set_name(t.name);
    entry->set_dtype(t.dtype);
    for (int64_t d : t.shape) entry->add_shape(d);
    entry->set_offset(offset);
    entry->set_nbytes(expected);
    offset += expected;
  }
  std::string header_bytes;
  if (!header.SerializeToString(&header_bytes)) {
    return absl::InternalError("cannot serialise the checkpoint header");
  }
  std::string out;
  out.reserve(kPreambleSize + header_bytes.size() + offset + kTrailerSize);
  out.append(kMagic, sizeof(kMagic));
  AppendLittleEndian<uint32_t>(kCheckpointVersion, &out);
  AppendLittleEndian<uint64_t>(header_bytes.size(), &out);
  out.append(header_bytes);
  for (const CheckpointTensorBytes& t : tensors) out.append(t.bytes.data(), t.bytes.size());
  AppendLittleEndian<uint32_t>(Crc32(out), &out);
  return out;
}

int64_t MaxCheckpointBytes(const JobSpec& spec, int64_t ntoken, int64_t vocabulary_bytes, int world) {
  const ModelConfig& m = spec.model();
  using Big = __int128;  // No spec overflows it; the result is clamped to int64.
  const Big parameters = ParameterCount(m, ntoken);
  // Recurrent state per rank: h (and c for an LSTM) of every layer, batch x nhid floats.
  const Big hidden = m.type() == TRANSFORMER
                         ? 0
                         : Big{m.type() == LSTM ? 2 : 1} * m.nlayers() * spec.data().batch_size() * m.nhid() * 4;
  const Big per_rank = 64 * 1024 /* generators */ + hidden;
  const Big bytes = 3 * 4 * parameters + Big{std::max(world, 1)} * per_rank + vocabulary_bytes + Big{16} * ntoken +
                    (4 << 20) /* header, names, optimizer archive framing */;
  return bytes > INT64_MAX ? INT64_MAX : static_cast<int64_t>(bytes);
}

}  // namespace ddlm
