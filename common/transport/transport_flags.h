#ifndef DDLM_COMMON_TRANSPORT_TRANSPORT_FLAGS_H_
#define DDLM_COMMON_TRANSPORT_TRANSPORT_FLAGS_H_

// The flags every client of the coordinator shares (the worker, the `ddlm` command
// line): --insecure, --ca_cert, --tls_cert, --tls_key, --token_file. Link this library
// only into such binaries' main.

#include "common/transport/transport_security.h"

namespace ddlm {

// An empty --ca_cert or --token_file falls back to the environment's DDLM_CA_CERT or
// DDLM_TOKEN_FILE, unless --insecure is given.
ClientTransport ClientTransportFromFlags();

}  // namespace ddlm

#endif  // DDLM_COMMON_TRANSPORT_TRANSPORT_FLAGS_H_
