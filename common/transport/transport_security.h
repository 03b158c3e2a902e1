#ifndef DDLM_COMMON_TRANSPORT_TRANSPORT_SECURITY_H_
#define DDLM_COMMON_TRANSPORT_TRANSPORT_SECURITY_H_

// How ddlm's processes talk to the coordinator: TLS (the coordinator's certificate,
// checked against a CA file), optionally mutual (a client certificate), with a bearer
// token on every call (coordinator/access_control.h); or plain text, only when asked
// for explicitly (--insecure). Bad settings get an error naming the flag or file.
//
// Threading: free functions; the credentials they return are thread-safe.

#include <memory>
#include <string>

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include "absl/status/statusor.h"

namespace ddlm {

struct ClientTransport {
  bool insecure = false;   // Plain text: no TLS, and so no token.
  std::string ca_cert;     // PEM: the CA that signed the coordinator's certificate.
  std::string cert, key;   // PEM: this client's certificate and key (mutual TLS), optional.
  std::string token_file;  // A file holding the bearer token, optional.
};

// INVALID_ARGUMENT for neither TLS nor --insecure, both, a certificate without its
// key, or a token without TLS; NOT_FOUND / ... naming an unreadable file; an empty
// token file.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(const ClientTransport& transport);

struct ServerTransport {
  bool insecure = false;
  std::string cert, key;  // PEM: the server's certificate (chain) and key.
  std::string client_ca;  // PEM: if set, every client must present a certificate it signed.
};

// INVALID_ARGUMENT for neither TLS nor --insecure, both, or a certificate without its
// key; an error naming an unreadable file.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(const ServerTransport& transport);

}  // namespace ddlm

#endif  // DDLM_COMMON_TRANSPORT_TRANSPORT_SECURITY_H_
