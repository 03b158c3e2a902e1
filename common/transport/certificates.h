#ifndef DDLM_COMMON_TRANSPORT_CERTIFICATES_H_
#define DDLM_COMMON_TRANSPORT_CERTIFICATES_H_

// The files a ddlm deployment's TLS and tokens need, made with Debian's `openssl`
// command (setup.sh installs it): a CA of its own, the coordinator's certificate
// signed by it, client certificates for mutual TLS, and random bearer tokens. `ddlm
// launch` makes them in its state directory; `ddlm certs` makes them for several
// machines. Private keys and tokens are written 0600; every file appears whole
// (written under a temporary name, then renamed).
//
// Threading: free functions; each runs openssl to completion.

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ddlm {

struct CertificateFiles {
  std::string ca_cert, ca_key;          // <dir>/ca.pem, ca.key
  std::string server_cert, server_key;  // <dir>/server.pem, server.key
};

// A new CA and a coordinator certificate valid for `hosts` (DNS names or IP
// addresses; localhost and 127.0.0.1 are always added) in `dir` (created 0700).
absl::StatusOr<CertificateFiles> MakeCertificates(const std::string& dir, const std::vector<std::string>& hosts);

// <dir>/client-<name>.pem and .key, signed by <dir>/ca.pem (mutual TLS).
absl::StatusOr<std::pair<std::string, std::string>> MakeClientCertificate(const std::string& dir,
                                                                          const std::string& name);

// 32 random bytes from /dev/urandom, as 64 hex digits.
absl::StatusOr<std::string> NewToken();

// Writes `contents` to `path` atomically with mode 0600.
absl::Status WriteSecretFile(const std::string& path, const std::string& contents);

}  // namespace ddlm

#endif  // DDLM_COMMON_TRANSPORT_CERTIFICATES_H_
