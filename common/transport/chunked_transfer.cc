#include "common/transport/chunked_transfer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/base/file_io.h"
#include "common/transport/grpc_status.h"

namespace ddlm {

grpc::Status SendChunks(const std::string& bytes, grpc::ServerContext* context, grpc::ServerWriter<DataChunk>* writer) {
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

grpc::Status SendFileChunks(const std::string& path, grpc::ServerContext* context,
                            grpc::ServerWriter<DataChunk>* writer) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return ToGrpcStatus(absl::NotFoundError(absl::StrCat("cannot open ", path, ": ", std::strerror(errno))));
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    return ToGrpcStatus(absl::InternalError(absl::StrCat("cannot stat ", path, ": ", std::strerror(errno))));
  }
  const int64_t total = st.st_size;
  int64_t offset = 0;
  uint32_t crc = 0;
  std::string buffer(kChunkBytes, '\0');
  do {
    const size_t want = static_cast<size_t>(std::min<int64_t>(kChunkBytes, total - offset));
    size_t got = 0;
    while (got < want) {
      const ssize_t n = ::pread(fd, buffer.data() + got, want - got, static_cast<off_t>(offset + got));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        return ToGrpcStatus(absl::DataLossError(absl::StrCat(path, ": short read at byte ", offset + got)));
      }
      got += static_cast<size_t>(n);
    }
    DataChunk chunk;
    chunk.set_data(buffer.data(), want);
    chunk.set_total_bytes(total);
    crc = Crc32(absl::string_view(buffer.data(), want), crc);
    offset += static_cast<int64_t>(want);
    if (offset == total) {
      chunk.set_last(true);
      chunk.set_crc32(crc);
    }
    if (context->IsCancelled() || !writer->Write(chunk)) {
      return grpc::Status(grpc::StatusCode::CANCELLED, "the client went away");
    }
  } while (offset < total);
  return grpc::Status::OK;
}

absl::StatusOr<std::string> CollectChunks(std::unique_ptr<grpc::ClientReaderInterface<DataChunk>> reader,
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
