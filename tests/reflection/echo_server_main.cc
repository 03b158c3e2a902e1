// Serves ddlm.testing.Echo with Debian's server reflection plugin, for
// reflection_client_test. It runs as its own process because the plugin's library
// registers the grpc.reflection.v1alpha descriptors that the client generates too.
//
// Binds 127.0.0.1:0, prints "listening on 127.0.0.1:<port>" and serves until killed.

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "tests/reflection/echo.grpc.pb.h"

namespace ddlm::testing {
namespace {

grpc::Status CheckRepeat(const SayRequest& request) {
  if (request.repeat() < 0) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("repeat must be >= 0, got ", request.repeat()));
  }
  return grpc::Status::OK;
}

// Writes "<text> #1" ... "<text> #<repeat>" one at a time, then finishes. Each
// reactor lives for one call and deletes itself in OnDone.
class SayStreamWriter : public grpc::ServerWriteReactor<SayReply> {
 public:
  explicit SayStreamWriter(const SayRequest& request) : request_(request) {
    const grpc::Status status = CheckRepeat(request_);
    if (!status.ok()) {
      Finish(status);
      return;
    }
    WriteNext();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "write failed"));
      return;
    }
    WriteNext();
  }

  void OnDone() override { delete this; }

 private:
  void WriteNext() {
    if (sent_ == request_.repeat()) {
      Finish(grpc::Status::OK);
      return;
    }
    ++sent_;
    reply_.set_text(absl::StrCat(request_.text(), " #", sent_));
    StartWrite(&reply_);
  }

  const SayRequest request_;
  SayReply reply_;
  int sent_ = 0;
};

class EchoService final : public Echo::CallbackService {
  grpc::ServerUnaryReactor* Say(grpc::CallbackServerContext* context, const SayRequest* request,
                                SayReply* reply) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    grpc::Status status = CheckRepeat(*request);
    if (status.ok()) {
      std::string text;
      for (int i = 0; i < std::max(request->repeat(), 1); ++i) text += request->text();
      reply->set_text(text);
    }
    reactor->Finish(status);
    return reactor;
  }

  grpc::ServerWriteReactor<SayReply>* SayStream(grpc::CallbackServerContext* context,
                                                const SayRequest* request) override {
    return new SayStreamWriter(*request);
  }
};

int Main() {
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  EchoService service;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "cannot start the echo server on 127.0.0.1:0\n");
    return 1;
  }
  std::printf("listening on 127.0.0.1:%d\n", port);
  std::fflush(stdout);
  server->Wait();
  return 0;
}

}  // namespace
}  // namespace ddlm::testing

int main() { return ddlm::testing::Main(); }
