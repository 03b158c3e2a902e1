// ReflectionClient against a real server with Debian's reflection plugin, run as its
// own process (echo_server_main; see BUILD for why).

#include "tests/reflection/reflection_client.h"

#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "common/base/subprocess.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ddlm::testing {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Relative to the runfiles root, the test's working directory.
const char kEchoServer[] = "tests/reflection/echo_server_main";
const char kListening[] = "listening on 127.0.0.1:";

class ReflectionClientTest : public ::testing::Test {
 protected:
  // One server for the whole suite; the tests only read from it.
  static void SetUpTestSuite() {
    server_ = new Subprocess({kEchoServer});
    ASSERT_TRUE(server_->WaitForLine(kListening)) << server_->output();
    const std::string& out = server_->output();
    port_ = std::stoi(out.substr(out.find(kListening) + sizeof(kListening) - 1));
  }

  static void TearDownTestSuite() {
    delete server_;  // Kills and reaps the server.
    server_ = nullptr;
  }

  void SetUp() override {
    ASSERT_GT(port_, 0);
    client_ = std::make_unique<ReflectionClient>(
        grpc::CreateChannel("127.0.0.1:" + std::to_string(port_), grpc::InsecureChannelCredentials()));
  }

  static Subprocess* server_;
  static int port_;
  std::unique_ptr<ReflectionClient> client_;
};

Subprocess* ReflectionClientTest::server_ = nullptr;
int ReflectionClientTest::port_ = 0;

TEST_F(ReflectionClientTest, ListsServices) {
  absl::StatusOr<std::vector<std::string>> services = client_->ListServices();
  ASSERT_TRUE(services.ok()) << services.status();
  EXPECT_THAT(*services, Contains("ddlm.testing.Echo"));
  EXPECT_THAT(*services, Contains("grpc.reflection.v1alpha.ServerReflection"));
  EXPECT_EQ(services->size(), 2);
}

TEST_F(ReflectionClientTest, ListsMethodsInProtoOrder) {
  absl::StatusOr<std::vector<std::string>> methods = client_->ListMethods("ddlm.testing.Echo");
  ASSERT_TRUE(methods.ok()) << methods.status();
  EXPECT_THAT(*methods, ElementsAre("ddlm.testing.Echo.Say", "ddlm.testing.Echo.SayStream"));
}

TEST_F(ReflectionClientTest, ListMethodsOfUnknownServiceIsNotFound) {
  absl::StatusOr<std::vector<std::string>> methods = client_->ListMethods("ddlm.testing.Nope");
  EXPECT_EQ(methods.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(methods.status().message(), HasSubstr("ddlm.testing.Nope"));
}

TEST_F(ReflectionClientTest, ListMethodsOfAMessageIsNotFound) {
  absl::StatusOr<std::vector<std::string>> methods = client_->ListMethods("ddlm.testing.SayRequest");
  EXPECT_EQ(methods.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(methods.status().message(), HasSubstr("'ddlm.testing.SayRequest' is not a service"));
}

TEST_F(ReflectionClientTest, CallsUnaryMethodWithJson) {
  // The reply type lives in the imported echo_types.proto.
  absl::StatusOr<std::string> reply = client_->CallUnary("ddlm.testing.Echo/Say", R"({"text": "ab", "repeat": 3})");
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(*reply, R"({"text":"ababab"})");
}

TEST_F(ReflectionClientTest, AcceptsDottedMethodNameAndEmptyRequest) {
  absl::StatusOr<std::string> reply = client_->CallUnary("ddlm.testing.Echo.Say", R"({"text": "hi"})");
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(*reply, R"({"text":"hi"})");

  // The empty request: no fields in the reply either (defaults are left out).
  reply = client_->CallUnary("/ddlm.testing.Echo/Say", "");
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(*reply, "{}");
}

TEST_F(ReflectionClientTest, StreamsEveryReply) {
  absl::StatusOr<std::vector<std::string>> replies =
      client_->CallServerStreaming("ddlm.testing.Echo/SayStream", R"({"text": "x", "repeat": 3})", 10);
  ASSERT_TRUE(replies.ok()) << replies.status();
  EXPECT_THAT(*replies, ElementsAre(R"({"text":"x #1"})", R"({"text":"x #2"})", R"({"text":"x #3"})"));

  replies = client_->CallServerStreaming("ddlm.testing.Echo/SayStream", R"({"text": "x", "repeat": 0})", 10);
  ASSERT_TRUE(replies.ok()) << replies.status();
  EXPECT_THAT(*replies, ::testing::IsEmpty());
}

TEST_F(ReflectionClientTest, StopsStreamingAtMaxMessages) {
  absl::StatusOr<std::vector<std::string>> replies =
      client_->CallServerStreaming("ddlm.testing.Echo.SayStream", R"({"text": "y", "repeat": 1000})", 2);
  ASSERT_TRUE(replies.ok()) << replies.status();
  EXPECT_THAT(*replies, ElementsAre(R"({"text":"y #1"})", R"({"text":"y #2"})"));
}

TEST_F(ReflectionClientTest, UnknownMethodOrServiceIsNotFound) {
  absl::StatusOr<std::string> reply = client_->CallUnary("ddlm.testing.Echo/Shout", "{}");
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(reply.status().message(), HasSubstr("'Shout'"));

  reply = client_->CallUnary("ddlm.testing.Nope/Say", "{}");
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(reply.status().message(), HasSubstr("'ddlm.testing.Nope'"));

  absl::StatusOr<std::vector<std::string>> replies = client_->CallServerStreaming("ddlm.testing.Echo/Whisper", "{}", 1);
  EXPECT_EQ(replies.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(replies.status().message(), HasSubstr("'Whisper'"));
}

TEST_F(ReflectionClientTest, BadJsonIsInvalidArgument) {
  absl::StatusOr<std::string> reply = client_->CallUnary("ddlm.testing.Echo/Say", R"({"text": )");
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(reply.status().message(), HasSubstr("request JSON is not a valid ddlm.testing.SayRequest"));

  // Unknown fields and wrong types are errors too.
  reply = client_->CallUnary("ddlm.testing.Echo/Say", R"({"txet": "a"})");
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(reply.status().message(), HasSubstr("txet"));

  absl::StatusOr<std::vector<std::string>> replies =
      client_->CallServerStreaming("ddlm.testing.Echo/SayStream", R"({"repeat": "many"})", 1);
  EXPECT_EQ(replies.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ReflectionClientTest, MalformedMethodNameOrWrongKindIsInvalidArgument) {
  EXPECT_EQ(client_->CallUnary("Say", "{}").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client_->CallUnary("ddlm.testing.Echo/", "{}").status().code(), absl::StatusCode::kInvalidArgument);

  absl::StatusOr<std::string> reply = client_->CallUnary("ddlm.testing.Echo/SayStream", "{}");
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(reply.status().message(), HasSubstr("server-streaming"));

  absl::StatusOr<std::vector<std::string>> replies = client_->CallServerStreaming("ddlm.testing.Echo/Say", "{}", 1);
  EXPECT_EQ(replies.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(replies.status().message(), HasSubstr("unary"));

  replies = client_->CallServerStreaming("ddlm.testing.Echo/SayStream", "{}", 0);
  EXPECT_EQ(replies.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ReflectionClientTest, ServerErrorKeepsItsCodeAndMessage) {
  absl::StatusOr<std::string> reply = client_->CallUnary("ddlm.testing.Echo/Say", R"({"text": "a", "repeat": -1})");
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(reply.status().message(), "repeat must be >= 0, got -1");

  absl::StatusOr<std::vector<std::string>> replies =
      client_->CallServerStreaming("ddlm.testing.Echo/SayStream", R"({"repeat": -2})", 5);
  EXPECT_EQ(replies.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(replies.status().message(), "repeat must be >= 0, got -2");
}

TEST_F(ReflectionClientTest, ExpiredDeadlineIsDeadlineExceeded) {
  absl::StatusOr<std::string> reply = client_->CallUnary("ddlm.testing.Echo/Say", "{}", absl::ZeroDuration());
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST(ReflectionClientNoServerTest, UnreachableServerIsUnavailable) {
  // A socket path (relative: unix paths are limited to 107 characters) with nothing
  // behind it, so the connection fails at once.
  ReflectionClient client(
      grpc::CreateChannel("unix:tests/reflection/no_server_here.sock", grpc::InsecureChannelCredentials()));
  absl::StatusOr<std::vector<std::string>> services = client.ListServices();
  EXPECT_EQ(services.status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace ddlm::testing
