// Fuzz target: a job spec as a user sends it, in text format (ddlm submit --config) or
// JSON (grpcurl -d), then defaults, validation, and the sizes the coordinator derives
// from a valid spec (a checkpoint's bound).

#include <cstddef>
#include <cstdint>
#include <string>

#include <google/protobuf/util/json_util.h>

#include "common/base/config.h"
#include "common/training/checkpoint.h"
#include "common/training/model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  ddlm::JobSpec spec;
  if (data[0] & 1) {
    if (!google::protobuf::util::JsonStringToMessage(text, &spec).ok()) return 0;
  } else {
    absl::StatusOr<ddlm::JobSpec> parsed = ddlm::ParseJobSpecText(text, "fuzz");
    if (!parsed.ok()) return 0;
    spec = *parsed;
  }
  ddlm::ApplyDefaults(&spec);
  if (!ddlm::ValidateJobSpec(spec).ok()) return 0;
  // A valid spec's derived sizes must be computable without overflow.
  (void)ddlm::ParameterCount(spec.model(), 33278);
  (void)ddlm::MaxCheckpointBytes(spec, 33278, 200000, spec.num_workers() > 0 ? spec.num_workers() : 1);
  return 0;
}
