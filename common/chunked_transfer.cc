#include "common/chunked_transfer.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/file_io.h"
#include "common/grpc_status.h"

namespace ddlm {

grpc::Status SendChunks(const std::string& bytes, grpc::ServerContext* context,
                        grpc::ServerWriter<DataChunk>* writer) {
  const uint32_t crc = Crc32(bytes);
  size_t offset = 0;
  do {
    DataChunk chunk;
    const size_t n = std::min(kChunkBytes, bytes.size() - offset);
    chunk.set_data(bytes.data() + offset, n);
    chunk.set_total_bytes(static_cast<int64_t>(bytes.size()));
    offset += n;
    if (offset == bytes.size()) {
      chunk.set_last(true);
      chunk.set_crc32(crc);
    }
    if (context->IsCancelled() || !writer->Write(chunk)) {
      return grpc::Status(grpc::StatusCode::CANCELLED, "the client went away");
    }
  } while (offset < bytes.size());
  return grpc::Status::OK;
}

absl::StatusOr<std::string> CollectChunks(std::unique_ptr<grpc::ClientReader<DataChunk>> reader,
                                          const std::string& what) {
  std::string bytes;
  DataChunk chunk;
  bool last = false;
  uint32_t crc = 0;
  while (reader->Read(&chunk)) {
    if (bytes.empty()) bytes.reserve(static_cast<size_t>(std::max<int64_t>(0, chunk.total_bytes())));
    bytes += chunk.data();
    if (chunk.last()) {
      last = true;
      crc = chunk.crc32();
    }
  }
  absl::Status status = FromGrpcStatus(reader->Finish());
  if (!status.ok()) return status;
  if (!last) return absl::DataLossError(absl::StrCat(what, ": the download ended early"));
  if (Crc32(bytes) != crc) {
    return absl::DataLossError(absl::StrCat(what, ": downloaded bytes fail their CRC-32 check"));
  }
  return bytes;
}

}  // namespace ddlm
