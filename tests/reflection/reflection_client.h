#ifndef DDLM_TESTS_REFLECTION_REFLECTION_CLIENT_H_
#define DDLM_TESTS_REFLECTION_REFLECTION_CLIENT_H_

// Test helper: calls any gRPC server that serves reflection, the way grpcurl does,
// without the server's generated code.
//
// It speaks grpc.reflection.v1alpha (the version Debian's grpc++_reflection 1.51
// serves) with stubs generated from /usr/share/grpc-proto at build time. That library
// registers the same descriptors, so a binary that links this one must not link
// @system//:grpc++_reflection: run the server under test as its own process.
//
// Messages are JSON in both directions (protobuf's JSON mapping). Replies keep the
// .proto field names ("max_tokens", not "maxTokens") and leave out fields that hold
// their default value, like grpcurl without -emit-defaults. Requests accept either
// spelling; an empty request string means the empty message.
//
// Errors: a status from the server (reflection or the call itself) keeps its
// canonical code and message; an unknown service or method is NOT_FOUND naming it;
// bad request JSON, a malformed method name, or a method of the wrong streaming kind
// is INVALID_ARGUMENT.
//
// Thread-safe: every call opens its own reflection stream and descriptor pool and
// caches nothing.

#include <memory>
#include <string>
#include <vector>

#include <grpcpp/channel.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ddlm::testing {

class ReflectionClient {
 public:
  explicit ReflectionClient(std::shared_ptr<grpc::Channel> channel);

  // The fully-qualified names of the services the server offers ("pkg.Svc"), in the
  // server's order, the reflection service included (`grpcurl list`).
  absl::StatusOr<std::vector<std::string>> ListServices();

  // The full names of `service`'s methods ("pkg.Svc.Method"), in .proto order
  // (`grpcurl list pkg.Svc`).
  absl::StatusOr<std::vector<std::string>> ListMethods(const std::string& service);

  // Calls a unary method, named "pkg.Svc/Method" or "pkg.Svc.Method", with the
  // request given as JSON, and returns the reply as JSON
  // (`grpcurl -d '<json>' host:port pkg.Svc/Method`). `timeout` bounds the whole
  // call, reflection lookups included; a timeout <= 0 is DEADLINE_EXCEEDED at once.
  absl::StatusOr<std::string> CallUnary(const std::string& method, const std::string& request_json,
                                        absl::Duration timeout = absl::Seconds(30));

  // Calls a server-streaming method and returns its replies as JSON, in order, until
  // the stream ends or `max_messages` have arrived (the call is then cancelled, and
  // the replies so far are the result).
  absl::StatusOr<std::vector<std::string>> CallServerStreaming(const std::string& method,
                                                               const std::string& request_json, int max_messages,
                                                               absl::Duration timeout = absl::Seconds(30));

 private:
  std::shared_ptr<grpc::Channel> channel_;
};

}  // namespace ddlm::testing

#endif  // DDLM_TESTS_REFLECTION_REFLECTION_CLIENT_H_
