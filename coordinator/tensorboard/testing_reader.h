#ifndef DDLM_COORDINATOR_TENSORBOARD_TESTING_READER_H_
#define DDLM_COORDINATOR_TENSORBOARD_TESTING_READER_H_

// Tests only: reads an event file back record by record, checking the framing and both
// CRCs, as TensorBoard's reader does.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/tensorboard_event.pb.h"

namespace ddlm {

absl::StatusOr<std::vector<tensorboard::Event>> ReadEventFile(const std::string& path);

}  // namespace ddlm

#endif  // DDLM_COORDINATOR_TENSORBOARD_TESTING_READER_H_
