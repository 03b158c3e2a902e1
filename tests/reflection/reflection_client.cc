#include "tests/reflection/reflection_client.h"

#include <cstdint>
#include <set>
#include <utility>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/descriptor_database.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/slice.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/reflection/v1alpha/reflection.grpc.pb.h"

namespace ddlm::testing {
namespace {

namespace pb = ::google::protobuf;
namespace rpb = ::grpc::reflection::v1alpha;

// ListServices and ListMethods take no timeout; this bounds their reflection stream.
constexpr absl::Duration kListTimeout = absl::Seconds(30);

absl::StatusCode ToAbslCode(int grpc_code) {
  // gRPC's and Abseil's canonical codes share their numbers (0 OK ... 16 UNAUTHENTICATED).
  if (grpc_code < 0 || grpc_code > static_cast<int>(absl::StatusCode::kUnauthenticated)) {
    return absl::StatusCode::kUnknown;
  }
  return static_cast<absl::StatusCode>(grpc_code);
}

absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(ToAbslCode(status.error_code()), status.error_message());
}

// The same code, with `context` in front of the message.
absl::Status WithContext(const absl::Status& status, absl::string_view context) {
  return absl::Status(status.code(), absl::StrCat(context, ": ", status.message()));
}

// One ServerReflectionInfo stream, used synchronously: each Ask writes a request and
// reads its response. The destructor half-closes the stream and reaps it.
class ReflectionStream {
 public:
  ReflectionStream(const std::shared_ptr<grpc::Channel>& channel, absl::Time deadline)
      : stub_(rpb::ServerReflection::NewStub(channel)) {
    context_.set_deadline(absl::ToChronoTime(deadline));
    stream_ = stub_->ServerReflectionInfo(&context_);
  }

  ~ReflectionStream() {
    if (finished_) return;
    stream_->WritesDone();
    rpb::ServerReflectionResponse ignored;
    while (stream_->Read(&ignored)) {
    }
    stream_->Finish();
  }

  ReflectionStream(const ReflectionStream&) = delete;
  ReflectionStream& operator=(const ReflectionStream&) = delete;

  // The server's response, or its error (an error_response or the stream's status).
  absl::StatusOr<rpb::ServerReflectionResponse> Ask(const rpb::ServerReflectionRequest& request) {
    if (finished_) return absl::FailedPreconditionError("the reflection stream has ended");
    rpb::ServerReflectionResponse response;
    if (!stream_->Write(request) || !stream_->Read(&response)) {
      finished_ = true;
      const grpc::Status status = stream_->Finish();
      if (status.ok()) return absl::UnavailableError("the server ended the reflection stream early");
      return FromGrpc(status);
    }
    if (response.has_error_response()) {
      return absl::Status(ToAbslCode(response.error_response().error_code()),
                          response.error_response().error_message());
    }
    return response;
  }

 private:
  std::unique_ptr<rpb::ServerReflection::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<rpb::ServerReflectionRequest, rpb::ServerReflectionResponse>> stream_;
  bool finished_ = false;
};

class CollectErrors : public pb::DescriptorPool::ErrorCollector {
 public:
  void AddError(const std::string& filename, const std::string& element_name, const pb::Message*, ErrorLocation,
                const std::string& message) override {
    errors_.push_back(absl::StrCat(filename, ": ", element_name, ": ", message));
  }
  std::string Joined() const { return absl::StrJoin(errors_, "; "); }

 private:
  std::vector<std::string> errors_;
};

// The descriptors of one service as the server describes them: the file that defines
// it and every file that file imports, transitively. Not movable: `pool` points at
// `database` and `errors` (members are destroyed in reverse order).
struct Schema {
  pb::SimpleDescriptorDatabase database;
  std::set<std::string> files;  // The names of the files in `database`.
  CollectErrors errors;
  std::unique_ptr<pb::DescriptorPool> pool;
  const pb::ServiceDescriptor* service = nullptr;  // Owned by `pool`.
};

// Adds the files of a file_descriptor_response to `schema`, and the names of their
// imports that it does not hold yet to `missing`.
absl::Status AddFiles(const rpb::ServerReflectionResponse& response, Schema* schema, std::set<std::string>* missing) {
  if (!response.has_file_descriptor_response()) {
    return absl::InternalError(
        absl::StrCat("server reflection answered with no file descriptors: ", response.ShortDebugString()));
  }
  for (const std::string& bytes : response.file_descriptor_response().file_descriptor_proto()) {
    pb::FileDescriptorProto file;
    if (!file.ParseFromString(bytes)) {
      return absl::InternalError("server reflection sent a FileDescriptorProto that does not parse");
    }
    missing->erase(file.name());
    if (!schema->files.insert(file.name()).second) continue;
    for (const std::string& dependency : file.dependency()) {
      if (schema->files.count(dependency) == 0) missing->insert(dependency);
    }
    if (!schema->database.Add(file)) {
      return absl::InternalError(absl::StrCat("server reflection sent conflicting definitions in ", file.name()));
    }
  }
  return absl::OkStatus();
}

// Fetches `service`'s descriptors: file_containing_symbol, then file_by_filename for
// each import not sent yet.
absl::StatusOr<std::unique_ptr<Schema>> ResolveService(const std::shared_ptr<grpc::Channel>& channel,
                                                       const std::string& service, absl::Time deadline) {
  ReflectionStream stream(channel, deadline);
  auto schema = std::make_unique<Schema>();
  std::set<std::string> missing;

  rpb::ServerReflectionRequest request;
  request.set_file_containing_symbol(service);
  absl::StatusOr<rpb::ServerReflectionResponse> response = stream.Ask(request);
  if (!response.ok()) {
    if (absl::IsNotFound(response.status())) {
      return WithContext(response.status(), absl::StrCat("service '", service, "' not found by server reflection"));
    }
    return WithContext(response.status(), absl::StrCat("server reflection lookup of '", service, "' failed"));
  }
  absl::Status added = AddFiles(*response, schema.get(), &missing);
  if (!added.ok()) return added;

  while (!missing.empty()) {
    const std::string file = *missing.begin();
    request.set_file_by_filename(file);
    response = stream.Ask(request);
    if (!response.ok()) {
      return WithContext(response.status(), absl::StrCat("server reflection lookup of '", file, "' (imported by '",
                                                         service, "''s files) failed"));
    }
    added = AddFiles(*response, schema.get(), &missing);
    if (!added.ok()) return added;
    if (schema->files.count(file) == 0) {
      return absl::InternalError(absl::StrCat("server reflection did not send the requested file '", file, "'"));
    }
  }

  schema->pool = std::make_unique<pb::DescriptorPool>(&schema->database, &schema->errors);
  schema->service = schema->pool->FindServiceByName(service);
  if (schema->service == nullptr) {
    const std::string errors = schema->errors.Joined();
    if (!errors.empty()) {
      return absl::InternalError(absl::StrCat("the server's descriptors for '", service, "' do not build: ", errors));
    }
    return absl::NotFoundError(absl::StrCat("'", service, "' is not a service on the server"));
  }
  return schema;
}

// "pkg.Svc/Method", "/pkg.Svc/Method" or "pkg.Svc.Method" -> {"pkg.Svc", "Method"}.
absl::StatusOr<std::pair<std::string, std::string>> SplitMethodName(const std::string& name) {
  std::string rest = name;
  if (!rest.empty() && rest[0] == '/') rest.erase(0, 1);
  size_t cut = rest.rfind('/');
  if (cut == std::string::npos) cut = rest.rfind('.');
  if (cut == std::string::npos || cut == 0 || cut + 1 == rest.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("method name '", name, "' is neither 'pkg.Service/Method' nor 'pkg.Service.Method'"));
  }
  return std::make_pair(rest.substr(0, cut), rest.substr(cut + 1));
}

// A resolved method; `method` is owned by `schema`.
struct ResolvedMethod {
  std::unique_ptr<Schema> schema;
  const pb::MethodDescriptor* method = nullptr;
};

absl::StatusOr<ResolvedMethod> ResolveMethod(const std::shared_ptr<grpc::Channel>& channel, const std::string& name,
                                             absl::Time deadline) {
  absl::StatusOr<std::pair<std::string, std::string>> parts = SplitMethodName(name);
  if (!parts.ok()) return parts.status();
  absl::StatusOr<std::unique_ptr<Schema>> schema = ResolveService(channel, parts->first, deadline);
  if (!schema.ok()) return schema.status();
  ResolvedMethod resolved;
  resolved.method = (*schema)->service->FindMethodByName(parts->second);
  if (resolved.method == nullptr) {
    return absl::NotFoundError(absl::StrCat("service '", parts->first, "' has no method '", parts->second, "'"));
  }
  resolved.schema = std::move(*schema);
  return resolved;
}

std::string StreamingKind(const pb::MethodDescriptor& method) {
  if (method.client_streaming() && method.server_streaming()) return "bidi-streaming";
  if (method.client_streaming()) return "client-streaming";
  if (method.server_streaming()) return "server-streaming";
  return "unary";
}

// The request message, parsed from JSON and serialized. `factory` builds the message.
absl::StatusOr<grpc::ByteBuffer> SerializeRequest(const pb::Descriptor& type, const std::string& json,
                                                  pb::DynamicMessageFactory* factory) {
  std::unique_ptr<pb::Message> message(factory->GetPrototype(&type)->New());
  if (!absl::StripAsciiWhitespace(json).empty()) {
    const pb::util::Status parsed = pb::util::JsonStringToMessage(json, message.get());
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("request JSON is not a valid ", type.full_name(), ": ", std::string(parsed.message())));
    }
  }
  std::string bytes;
  if (!message->SerializeToString(&bytes)) {
    return absl::InternalError(absl::StrCat("cannot serialize the ", type.full_name(), " request"));
  }
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

// A reply message as JSON with the .proto field names.
absl::StatusOr<std::string> ReplyToJson(const pb::Descriptor& type, const grpc::ByteBuffer& buffer,
                                        pb::DynamicMessageFactory* factory) {
  std::vector<grpc::Slice> slices;
  const grpc::Status dumped = buffer.Dump(&slices);
  if (!dumped.ok()) return FromGrpc(dumped);
  std::string bytes;
  for (const grpc::Slice& slice : slices) bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  std::unique_ptr<pb::Message> message(factory->GetPrototype(&type)->New());
  if (!message->ParseFromString(bytes)) {
    return absl::InternalError(absl::StrCat("the reply does not parse as ", type.full_name()));
  }
  pb::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string json;
  const pb::util::Status printed = pb::util::MessageToJsonString(*message, &json, options);
  if (!printed.ok()) {
    return absl::InternalError(
        absl::StrCat("cannot print the ", type.full_name(), " reply as JSON: ", std::string(printed.message())));
  }
  return json;
}

// A private completion queue with one operation in flight at a time: Await blocks
// until the operation started with `tag` completes. The generic stub has no blocking
// API for streams, so the calls below drive it through this.
class OneAtATimeQueue {
 public:
  OneAtATimeQueue() = default;
  OneAtATimeQueue(const OneAtATimeQueue&) = delete;
  OneAtATimeQueue& operator=(const OneAtATimeQueue&) = delete;
  ~OneAtATimeQueue() {
    queue_.Shutdown();
    void* tag;
    bool ok;
    while (queue_.Next(&tag, &ok)) {
    }
  }

  grpc::CompletionQueue* get() { return &queue_; }
  void* tag() { return this; }

  // Whether the operation succeeded (gRPC's `ok`).
  bool Await() {
    void* got = nullptr;
    bool ok = false;
    if (!queue_.Next(&got, &ok)) return false;
    return got == tag() && ok;
  }

 private:
  grpc::CompletionQueue queue_;
};

}  // namespace

ReflectionClient::ReflectionClient(std::shared_ptr<grpc::Channel> channel) : channel_(std::move(channel)) {}

absl::StatusOr<std::vector<std::string>> ReflectionClient::ListServices() {
  ReflectionStream stream(channel_, absl::Now() + kListTimeout);
  rpb::ServerReflectionRequest request;
  request.set_list_services("*");
  absl::StatusOr<rpb::ServerReflectionResponse> response = stream.Ask(request);
  if (!response.ok()) return WithContext(response.status(), "server reflection list_services failed");
  if (!response->has_list_services_response()) {
    return absl::InternalError(
        absl::StrCat("server reflection answered list_services with ", response->ShortDebugString()));
  }
  std::vector<std::string> services;
  for (const rpb::ServiceResponse& service : response->list_services_response().service()) {
    services.push_back(service.name());
  }
  return services;
}

absl::StatusOr<std::vector<std::string>> ReflectionClient::ListMethods(const std::string& service) {
  absl::StatusOr<std::unique_ptr<Schema>> schema = ResolveService(channel_, service, absl::Now() + kListTimeout);
  if (!schema.ok()) return schema.status();
  std::vector<std::string> methods;
  for (int i = 0; i < (*schema)->service->method_count(); ++i) {
    methods.push_back((*schema)->service->method(i)->full_name());
  }
  return methods;
}

namespace {

// What both call kinds do first: resolve `method` through reflection, check that it
// is of the `server_streaming` kind wanted, and encode the JSON request.
struct PreparedCall {
  std::unique_ptr<Schema> schema;  // Owns `method` and the message types.
  const pb::MethodDescriptor* method = nullptr;
  std::unique_ptr<pb::DynamicMessageFactory> factory;  // Owns the messages' prototypes.
  grpc::ByteBuffer request;
  std::string path;  // "/package.Service/Method".
  absl::Time deadline;
};

absl::StatusOr<PreparedCall> PrepareCall(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                                         const std::string& request_json, absl::Duration timeout,
                                         bool server_streaming) {
  // A deadline that has already passed fails here, always: at the wire, gRPC's coarse
  // clock could let a call with a deadline of "now" through.
  if (timeout <= absl::ZeroDuration()) {
    return absl::DeadlineExceededError(
        absl::StrCat("the call's deadline has passed (timeout ", absl::FormatDuration(timeout), ")"));
  }
  PreparedCall call;
  call.deadline = absl::Now() + timeout;
  absl::StatusOr<ResolvedMethod> resolved = ResolveMethod(channel, method, call.deadline);
  if (!resolved.ok()) return resolved.status();
  const pb::MethodDescriptor& descriptor = *resolved->method;
  if (descriptor.client_streaming() || descriptor.server_streaming() != server_streaming) {
    return absl::InvalidArgumentError(absl::StrCat("'", descriptor.full_name(), "' is ", StreamingKind(descriptor),
                                                   server_streaming ? ", not server-streaming" : ", not unary"));
  }
  call.schema = std::move(resolved->schema);
  call.method = &descriptor;
  call.factory = std::make_unique<pb::DynamicMessageFactory>();
  absl::StatusOr<grpc::ByteBuffer> request =
      SerializeRequest(*descriptor.input_type(), request_json, call.factory.get());
  if (!request.ok()) return request.status();
  call.request = *std::move(request);
  call.path = absl::StrCat("/", descriptor.service()->full_name(), "/", descriptor.name());
  return call;
}

}  // namespace

absl::StatusOr<std::string> ReflectionClient::CallUnary(const std::string& method, const std::string& request_json,
                                                        absl::Duration timeout) {
  absl::StatusOr<PreparedCall> prepared = PrepareCall(channel_, method, request_json, timeout, false);
  if (!prepared.ok()) return prepared.status();
  const pb::MethodDescriptor& descriptor = *prepared->method;
  grpc::GenericStub stub(channel_);
  OneAtATimeQueue queue;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(prepared->deadline));
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> call =
      stub.PrepareUnaryCall(&context, prepared->path, prepared->request, queue.get());
  call->StartCall();
  grpc::ByteBuffer reply;
  grpc::Status status;
  call->Finish(&reply, &status, queue.tag());
  queue.Await();  // Finish always completes; `status` tells how.
  if (!status.ok()) return FromGrpc(status);
  return ReplyToJson(*descriptor.output_type(), reply, prepared->factory.get());
}

absl::StatusOr<std::vector<std::string>> ReflectionClient::CallServerStreaming(const std::string& method,
                                                                               const std::string& request_json,
                                                                               int max_messages,
                                                                               absl::Duration timeout) {
  if (max_messages <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("max_messages must be positive, got ", max_messages));
  }
  absl::StatusOr<PreparedCall> prepared = PrepareCall(channel_, method, request_json, timeout, true);
  if (!prepared.ok()) return prepared.status();
  const pb::MethodDescriptor& descriptor = *prepared->method;
  grpc::GenericStub stub(channel_);
  OneAtATimeQueue queue;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(prepared->deadline));
  // The generic stub calls every streaming method as bidi; on the wire a
  // server-streaming call is the same: one request, then the client half-closes.
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call = stub.PrepareCall(&context, prepared->path, queue.get());
  std::vector<std::string> replies;
  absl::Status reply_error;
  bool cancelled = false;
  call->StartCall(queue.tag());
  // A failed start or write ends the call: Finish below reports why.
  if (queue.Await()) {
    call->WriteLast(prepared->request, grpc::WriteOptions(), queue.tag());
    if (queue.Await()) {
      grpc::ByteBuffer buffer;
      while (static_cast<int>(replies.size()) < max_messages) {
        call->Read(&buffer, queue.tag());
        if (!queue.Await()) break;  // The server ended the stream.
        absl::StatusOr<std::string> json = ReplyToJson(*descriptor.output_type(), buffer, prepared->factory.get());
        if (!json.ok()) {
          reply_error = json.status();
          break;
        }
        replies.push_back(*std::move(json));
      }
      if (!reply_error.ok() || static_cast<int>(replies.size()) == max_messages) {
        context.TryCancel();
        cancelled = true;
      }
    }
  }
  grpc::Status status;
  call->Finish(&status, queue.tag());
  queue.Await();
  if (!reply_error.ok()) return reply_error;
  if (cancelled) return replies;
  if (!status.ok()) return FromGrpc(status);
  return replies;
}

}  // namespace ddlm::testing
