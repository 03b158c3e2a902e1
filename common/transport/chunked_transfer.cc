#include "common/transport/chunked_transfer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/base/file_io.h"
#include "common/base/status_macros.h"
#include "common/transport/grpc_status.h"

namespace ddlm {

grpc::Status SendChunksFrom(int64_t total, const std::function<absl::StatusOr<std::string>(int64_t, size_t)>& read,
                            grpc::ServerContext* context, grpc::ServerWriter<DataChunk>* writer) {
  int64_t offset = 0;
  uint32_t crc = 0;
  do {
    const size_t n = static_cast<size_t>(std::min<int64_t>(kChunkBytes, total - offset));
    absl::StatusOr<std::string> bytes = read(offset, n);
    if (!bytes.ok()) return ToGrpcStatus(bytes.status());
    if (bytes->size() != n) {
      return ToGrpcStatus(absl::InternalError(absl::StrCat("made ", bytes->size(), " bytes at ", offset, ", not ", n)));
    }
    DataChunk chunk;
    crc = Crc32(*bytes, crc);
    chunk.set_data(*std::move(bytes));
    chunk.set_total_bytes(total);
    offset += static_cast<int64_t>(n);
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

grpc::Status SendChunks(const std::string& bytes, grpc::ServerContext* context, grpc::ServerWriter<DataChunk>* writer) {
  return SendChunksFrom(
      static_cast<int64_t>(bytes.size()),
      [&](int64_t offset, size_t n) -> absl::StatusOr<std::string> {
        return bytes.substr(static_cast<size_t>(offset), n);
      },
      context, writer);
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
  return SendChunksFrom(
      static_cast<int64_t>(st.st_size),
      [&](int64_t offset, size_t want) -> absl::StatusOr<std::string> {
        std::string buffer(want, '\0');
        size_t got = 0;
        while (got < want) {
          const ssize_t n = ::pread(fd, buffer.data() + got, want - got, static_cast<off_t>(offset + got));
          if (n < 0 && errno == EINTR) continue;
          if (n <= 0) return absl::DataLossError(absl::StrCat(path, ": short read at byte ", offset + got));
          got += static_cast<size_t>(n);
        }
        return buffer;
      },
      context, writer);
}

absl::Status ReceiveChunks(std::unique_ptr<grpc::ClientReaderInterface<DataChunk>> reader, const std::string& what,
                           const std::function<absl::Status(absl::string_view)>& sink) {
  DataChunk chunk;
  bool last = false;
  uint32_t crc = 0, expected = 0;
  absl::Status sunk;
  while (reader->Read(&chunk)) {
    if (!sunk.ok()) continue;  // Drained: Finish needs the stream read to its end.
    crc = Crc32(chunk.data(), crc);
    sunk = sink(chunk.data());
    if (chunk.last()) {
      last = true;
      expected = chunk.crc32();
    }
  }
  absl::Status status = FromGrpcStatus(reader->Finish());
  if (!sunk.ok()) return sunk;
  if (!status.ok()) return status;
  if (!last) return absl::DataLossError(absl::StrCat(what, ": the download ended early"));
  if (crc != expected) return absl::DataLossError(absl::StrCat(what, ": downloaded bytes fail their CRC-32 check"));
  return absl::OkStatus();
}

absl::StatusOr<std::string> CollectChunks(std::unique_ptr<grpc::ClientReaderInterface<DataChunk>> reader,
                                          const std::string& what) {
  std::string bytes;
  DDLM_RETURN_IF_ERROR(ReceiveChunks(std::move(reader), what, [&](absl::string_view data) {
    bytes.append(data.data(), data.size());
    return absl::OkStatus();
  }));
  return bytes;
}

}  // namespace ddlm
