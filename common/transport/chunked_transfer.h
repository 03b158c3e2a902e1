#ifndef DDLM_COMMON_TRANSPORT_CHUNKED_TRANSFER_H_
#define DDLM_COMMON_TRANSPORT_CHUNKED_TRANSFER_H_

// Files over gRPC in DataChunk messages (proto/job.proto), under the default 4 MiB
// message limit: the sender splits and puts the CRC-32 of the whole in the last chunk;
// the receiver reassembles and checks it. Used by both services (shards, checkpoints)
// and their clients (the worker, the `ddlm` command line).
//
// Threading: free functions; each call uses its own stream.

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/proto_utils.h>
#include <grpcpp/support/sync_stream.h>

#include "absl/status/statusor.h"
#include "proto/job.pb.h"

namespace ddlm {

inline constexpr size_t kChunkBytes = 1 << 20;

// Writes `bytes` as chunks. CANCELLED when the client went away.
grpc::Status SendChunks(const std::string& bytes, grpc::ServerContext* context, grpc::ServerWriter<DataChunk>* writer);

// Streams the file at `path` as chunks, read from disk a chunk at a time (never held
// whole), its CRC-32 computed on the way. NOT_FOUND/... naming the path if it cannot
// be read; CANCELLED when the client went away.
grpc::Status SendFileChunks(const std::string& path, grpc::ServerContext* context,
                            grpc::ServerWriter<DataChunk>* writer);

// Reads a whole stream of chunks and the call's status. The call's error, or
// DATA_LOSS naming `what` when the stream ended before its last chunk or the bytes
// fail their CRC-32.
absl::StatusOr<std::string> CollectChunks(std::unique_ptr<grpc::ClientReaderInterface<DataChunk>> reader,
                                          const std::string& what);

}  // namespace ddlm

#endif  // DDLM_COMMON_TRANSPORT_CHUNKED_TRANSFER_H_
