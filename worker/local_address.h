#ifndef DDLM_WORKER_LOCAL_ADDRESS_H_
#define DDLM_WORKER_LOCAL_ADDRESS_H_

// The local IP address this machine uses to reach `target` ("host:port"): the
// address the other workers can most likely reach this one on, without the user
// naming an interface (no packet is sent; a UDP socket is connected and asked for its
// local end). NOT_FOUND if `target` does not resolve.

#include <string>

#include "absl/status/statusor.h"

namespace ddlm {

absl::StatusOr<std::string> LocalAddressFor(const std::string& target);

}  // namespace ddlm

#endif  // DDLM_WORKER_LOCAL_ADDRESS_H_
