#include "common/transport/transport_flags.h"

#include <cstdlib>
#include <string>

#include "absl/flags/flag.h"

ABSL_FLAG(bool, insecure, false, "Talk to the coordinator in plain text (no TLS, no token): trusted networks only.");
ABSL_FLAG(std::string, ca_cert, "",
          "PEM file of the CA that signed the coordinator's certificate (TLS); default: $DDLM_CA_CERT.");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate of this client, for a coordinator that requires one (mutual TLS).");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert.");
ABSL_FLAG(std::string, token_file, "", "File holding the bearer token sent on every call; default: $DDLM_TOKEN_FILE.");

namespace ddlm {
namespace {

std::string FlagOrEnv(const std::string& flag, const char* env) {
  if (!flag.empty()) return flag;
  const char* value = std::getenv(env);
  return value != nullptr ? value : "";
}

}  // namespace

ClientTransport ClientTransportFromFlags() {
  ClientTransport t;
  t.insecure = absl::GetFlag(FLAGS_insecure);
  t.cert = absl::GetFlag(FLAGS_tls_cert);
  t.key = absl::GetFlag(FLAGS_tls_key);
  // --insecure takes nothing from the environment (a caller's DDLM_* would contradict it).
  t.ca_cert = t.insecure ? absl::GetFlag(FLAGS_ca_cert) : FlagOrEnv(absl::GetFlag(FLAGS_ca_cert), "DDLM_CA_CERT");
  t.token_file =
      t.insecure ? absl::GetFlag(FLAGS_token_file) : FlagOrEnv(absl::GetFlag(FLAGS_token_file), "DDLM_TOKEN_FILE");
  return t;
}

}  // namespace ddlm
