#ifndef DDLM_COMMON_TRANSPORT_CHUNKED_TRANSFER_H_
#define DDLM_COMMON_TRANSPORT_CHUNKED_TRANSFER_H_

// Files over gRPC in DataChunk messages (proto/job.proto), under the default 4 MiB
// message limit: the sender splits and puts the CRC-32 of the whole in the last chunk;
// the receiver reassembles and checks it. Used by both services (shards, checkpoints)
// and their clients (the worker, the `ddlm` command line).
//
// Threading: free functions; each call uses its own stream.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/proto_utils.h>
#include <grpcpp/support/sync_stream.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/job.pb.h"

namespace ddlm {

inline constexpr size_t kChunkBytes = 1 << 20;

// Writes `bytes` as chunks. CANCELLED when the client went away.
grpc::Status SendChunks(const std::string& bytes, grpc::ServerContext* context, grpc::ServerWriter<DataChunk>* writer);

// Streams `total` bytes made a piece at a time by `read(offset, n)` (which returns
// exactly n bytes, or an error that ends the call), never holding them whole.
grpc::Status SendChunksFrom(int64_t total, const std::function<absl::StatusOr<std::string>(int64_t, size_t)>& read,
                            grpc::ServerContext* context, grpc::ServerWriter<DataChunk>* writer);

// Streams the file at `path` as chunks, read from disk a chunk at a time (never held
// whole), its CRC-32 computed on the way. NOT_FOUND/... naming the path if it cannot
// be read; CANCELLED when the client went away.
grpc::Status SendFileChunks(const std::string& path, grpc::ServerContext* context,
                            grpc::ServerWriter<DataChunk>* writer);

// Reads a stream of chunks and the call's status, passing each chunk's bytes to
// `sink` as they come (an error from it ends the call). The call's error, or DATA_LOSS
// naming `what` when the stream ended before its last chunk or the bytes fail their
// CRC-32 (found only at the end: the sink must not trust what it got until then).
absl::Status ReceiveChunks(std::unique_ptr<grpc::ClientReaderInterface<DataChunk>> reader, const std::string& what,
                           const std::function<absl::Status(absl::string_view)>& sink);

// ReceiveChunks into one string.
absl::StatusOr<std::string> CollectChunks(std::unique_ptr<grpc::ClientReaderInterface<DataChunk>> reader,
                                          const std::string& what);

}  // namespace ddlm

#endif  // DDLM_COMMON_TRANSPORT_CHUNKED_TRANSFER_H_
