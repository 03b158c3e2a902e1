#include "common/transport/transport_security.h"

#include <sys/stat.h>

#include <cstdlib>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "common/base/file_io.h"
#include "common/transport/certificates.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/job_service.grpc.pb.h"

namespace ddlm {
namespace {

using ::testing::HasSubstr;

std::string TempDir(const std::string& name) { return absl::StrCat(std::getenv("TEST_TMPDIR"), "/", name); }

// Answers ListWorkers with the authorization metadata it received, as one worker id.
class AuthorizationEcho final : public JobService::Service {
 public:
  grpc::Status ListWorkers(grpc::ServerContext* context, const ListWorkersRequest*,
                           ListWorkersResponse* response) override {
    auto it = context->client_metadata().find("authorization");
    response->add_workers()->set_worker_id(
        it == context->client_metadata().end() ? "" : std::string(it->second.data(), it->second.size()));
    return grpc::Status::OK;
  }
};

class Server {
 public:
  explicit Server(std::shared_ptr<grpc::ServerCredentials> credentials) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", credentials, &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
  }
  ~Server() { server_->Shutdown(); }
  // ListWorkers through `credentials`: the authorization the server saw, or the error.
  // `host_name`: the name the client expects in the certificate (default: the address).
  absl::StatusOr<std::string> Call(std::shared_ptr<grpc::ChannelCredentials> credentials,
                                   const std::string& host_name = "") {
    grpc::ChannelArguments args;
    if (!host_name.empty()) args.SetSslTargetNameOverride(host_name);
    auto stub = JobService::NewStub(grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port_), credentials, args));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    ListWorkersResponse response;
    grpc::Status status = stub->ListWorkers(&context, {}, &response);
    if (!status.ok()) return absl::UnavailableError(status.error_message());
    return response.workers(0).worker_id();
  }
  int port() const { return port_; }

 private:
  AuthorizationEcho service_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

class TransportSecurityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto files = MakeCertificates(TempDir("pki"), {"coordinator.example"});
    ASSERT_TRUE(files.ok()) << files.status();
    files_ = new CertificateFiles(*files);
    ASSERT_TRUE(WriteSecretFile(TempDir("token"), "0123456789abcdef0123\n").ok());
  }
  static const CertificateFiles& Files() { return *files_; }
  static CertificateFiles* files_;
};
CertificateFiles* TransportSecurityTest::files_ = nullptr;

std::shared_ptr<grpc::ServerCredentials> ServerTls(const std::string& client_ca = "") {
  ServerTransport t;
  t.cert = TempDir("pki/server.pem");
  t.key = TempDir("pki/server.key");
  t.client_ca = client_ca;
  auto credentials = MakeServerCredentials(t);
  EXPECT_TRUE(credentials.ok()) << credentials.status();
  return *credentials;
}

TEST_F(TransportSecurityTest, KeysAndTokensAreWrittenForTheOwnerOnly) {
  struct stat st;
  ASSERT_EQ(::stat(Files().ca_key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(Files().server_key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(TempDir("token").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // A host that is no host name is refused before anything is written.
  auto odd = MakeCertificates(TempDir("odd-pki"), {"ok.example,DNS:evil.example"});
  EXPECT_EQ(odd.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(odd.status().message(), HasSubstr("is not a host name"));
  auto a = NewToken(), b = NewToken();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->size(), 64u);
  EXPECT_NE(*a, *b);
}

TEST_F(TransportSecurityTest, ATokenTravelsOverTlsCheckedAgainstTheCa) {
  Server server(ServerTls());
  ClientTransport client;
  client.ca_cert = Files().ca_cert;
  client.token_file = TempDir("token");
  auto credentials = MakeChannelCredentials(client);
  ASSERT_TRUE(credentials.ok()) << credentials.status();
  auto seen = server.Call(*credentials);
  ASSERT_TRUE(seen.ok()) << seen.status();
  EXPECT_EQ(*seen, "Bearer 0123456789abcdef0123");

  // The certificate names the coordinator's hosts: another name is refused.
  EXPECT_TRUE(server.Call(*credentials, "coordinator.example").ok());
  EXPECT_FALSE(server.Call(*credentials, "impostor.example").ok());

  client.token_file.clear();  // TLS alone: no authorization sent.
  EXPECT_EQ(*server.Call(*MakeChannelCredentials(client)), "");

  // Plain text to a TLS port, or another CA's trust, gets nowhere.
  EXPECT_FALSE(server.Call(grpc::InsecureChannelCredentials()).ok());
  auto other = MakeCertificates(TempDir("other-pki"), {});
  ASSERT_TRUE(other.ok()) << other.status();
  client.ca_cert = other->ca_cert;
  EXPECT_FALSE(server.Call(*MakeChannelCredentials(client)).ok());
}

TEST_F(TransportSecurityTest, MutualTlsWantsAClientCertificateFromTheCa) {
  Server server(ServerTls(Files().ca_cert));
  ClientTransport client;
  client.ca_cert = Files().ca_cert;
  EXPECT_FALSE(server.Call(*MakeChannelCredentials(client)).ok());
  auto pair = MakeClientCertificate(TempDir("pki"), "rack1");
  ASSERT_TRUE(pair.ok()) << pair.status();
  client.cert = pair->first;
  client.key = pair->second;
  EXPECT_TRUE(server.Call(*MakeChannelCredentials(client)).ok());
}

TEST_F(TransportSecurityTest, BadSettingsAreRefusedNamingTheFlag) {
  struct Case {
    ClientTransport t;
    const char* error;
  };
  ClientTransport none, insecure_with_ca, insecure_with_token, half_pair, missing_ca, not_pem, empty_token;
  insecure_with_ca.insecure = true;
  insecure_with_ca.ca_cert = Files().ca_cert;
  insecure_with_token.insecure = true;
  insecure_with_token.token_file = TempDir("token");
  half_pair.ca_cert = Files().ca_cert;
  half_pair.cert = Files().server_cert;
  missing_ca.ca_cert = "/nonexistent/ca.pem";
  ASSERT_TRUE(WriteFileAtomically(TempDir("not.pem"), "hello").ok());
  not_pem.ca_cert = TempDir("not.pem");
  ASSERT_TRUE(WriteFileAtomically(TempDir("empty-token"), " \n").ok());
  empty_token.ca_cert = Files().ca_cert;
  empty_token.token_file = TempDir("empty-token");
  for (const Case& c : {Case{none, "no --ca_cert"}, Case{insecure_with_ca, "takes no --ca_cert"},
                        Case{insecure_with_token, "a token is sent only over TLS"},
                        Case{half_pair, "--tls_cert and --tls_key go together"}, Case{missing_ca, "--ca_cert: "},
                        Case{not_pem, "is not a PEM file"}, Case{empty_token, "is empty"}}) {
    auto credentials = MakeChannelCredentials(c.t);
    ASSERT_FALSE(credentials.ok()) << c.error;
    EXPECT_THAT(credentials.status().message(), HasSubstr(c.error));
  }
  ClientTransport plain;
  plain.insecure = true;
  EXPECT_TRUE(MakeChannelCredentials(plain).ok());

  ServerTransport server;
  EXPECT_THAT(MakeServerCredentials(server).status().message(), HasSubstr("refusing to serve plain text"));
  server.cert = Files().server_cert;
  EXPECT_THAT(MakeServerCredentials(server).status().message(), HasSubstr("go together"));
  server.insecure = true;
  EXPECT_THAT(MakeServerCredentials(server).status().message(), HasSubstr("takes no --tls_cert"));
  ServerTransport plain_server;
  plain_server.insecure = true;
  EXPECT_TRUE(MakeServerCredentials(plain_server).ok());
}

}  // namespace
}  // namespace ddlm
