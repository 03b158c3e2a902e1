#include "common/transport/transport_security.h"

#include <grpcpp/grpcpp.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/base/file_io.h"
#include "common/base/status_macros.h"

namespace ddlm {
namespace {

absl::StatusOr<std::string> ReadPem(const std::string& path, const char* flag) {
  absl::StatusOr<std::string> pem = ReadFile(path);
  if (!pem.ok()) return absl::Status(pem.status().code(), absl::StrCat(flag, ": ", pem.status().message()));
  if (pem->find("-----BEGIN ") == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(flag, " '", path, "' is not a PEM file"));
  }
  return pem;
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(const ClientTransport& t) {
  if (t.insecure) {
    if (!t.ca_cert.empty() || !t.cert.empty()) {
      return absl::InvalidArgumentError("--insecure is plain text: it takes no --ca_cert or --tls_cert");
    }
    if (!t.token_file.empty()) {
      return absl::InvalidArgumentError("--insecure is plain text: a token is sent only over TLS (give --ca_cert)");
    }
    return grpc::InsecureChannelCredentials();
  }
  if (t.ca_cert.empty()) {
    return absl::InvalidArgumentError(
        "no --ca_cert (or $DDLM_CA_CERT) to check the coordinator's certificate; --insecure for plain text");
  }
  if (t.cert.empty() != t.key.empty()) return absl::InvalidArgumentError("--tls_cert and --tls_key go together");
  grpc::SslCredentialsOptions ssl;
  DDLM_ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadPem(t.ca_cert, "--ca_cert"));
  if (!t.cert.empty()) {
    DDLM_ASSIGN_OR_RETURN(ssl.pem_cert_chain, ReadPem(t.cert, "--tls_cert"));
    DDLM_ASSIGN_OR_RETURN(ssl.pem_private_key, ReadPem(t.key, "--tls_key"));
  }
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::SslCredentials(ssl);
  if (t.token_file.empty()) return credentials;
  absl::StatusOr<std::string> token = ReadFile(t.token_file);
  if (!token.ok()) {
    return absl::Status(token.status().code(), absl::StrCat("--token_file: ", token.status().message()));
  }
  const std::string stripped(absl::StripAsciiWhitespace(*token));
  if (stripped.empty()) return absl::InvalidArgumentError(absl::StrCat("--token_file '", t.token_file, "' is empty"));
  return grpc::CompositeChannelCredentials(credentials, grpc::AccessTokenCredentials(stripped));
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(const ServerTransport& t) {
  const bool tls = !t.cert.empty() || !t.key.empty();
  if (t.insecure) {
    if (tls || !t.client_ca.empty()) {
      return absl::InvalidArgumentError(
          "--insecure is plain text: it takes no --tls_cert, --tls_key or --tls_client_ca");
    }
    return grpc::InsecureServerCredentials();
  }
  if (!tls) {
    return absl::InvalidArgumentError(
        "refusing to serve plain text: give --tls_cert and --tls_key (ddlm launch makes them), or --insecure");
  }
  if (t.cert.empty() || t.key.empty()) return absl::InvalidArgumentError("--tls_cert and --tls_key go together");
  grpc::SslServerCredentialsOptions ssl(t.client_ca.empty()
                                            ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                            : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  DDLM_ASSIGN_OR_RETURN(pair.cert_chain, ReadPem(t.cert, "--tls_cert"));
  DDLM_ASSIGN_OR_RETURN(pair.private_key, ReadPem(t.key, "--tls_key"));
  ssl.pem_key_cert_pairs.push_back(std::move(pair));
  if (!t.client_ca.empty()) {
    DDLM_ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadPem(t.client_ca, "--tls_client_ca"));
  }
  return grpc::SslServerCredentials(ssl);
}

}  // namespace ddlm
