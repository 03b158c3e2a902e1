// Fuzz target: a job spec as a user sends it, in text format (ddlm submit --config) or
// JSON (grpcurl -d), then defaults, validation, and the sizes the coordinator derives
// from a valid spec (a checkpoint's bound). Properties of a valid spec: it round-trips
// through text format and JSON unchanged, defaults change it no further, and its
// derived sizes are consistent (a checkpoint's bound holds at least the weights).

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <google/protobuf/text_format.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>

#include "common/base/config.h"
#include "common/training/checkpoint.h"
#include "common/training/model.h"

namespace {

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "job_spec_fuzzer: property failed: %s\n", what);
  std::abort();
}

}  // namespace

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
  using google::protobuf::util::MessageDifferencer;
  // Defaults applied twice change nothing.
  ddlm::JobSpec twice = spec;
  ddlm::ApplyDefaults(&twice);
  if (!MessageDifferencer::Equals(twice, spec)) Fail("ApplyDefaults is not idempotent");
  // Through text format (a config file) and JSON (grpcurl) and back: the same spec.
  std::string as_text;
  if (!google::protobuf::TextFormat::PrintToString(spec, &as_text)) Fail("a valid spec does not print");
  absl::StatusOr<ddlm::JobSpec> from_text = ddlm::ParseJobSpecText(as_text, "round trip");
  if (!from_text.ok() || !MessageDifferencer::Equals(*from_text, spec)) Fail("a valid spec changes through text");
  std::string as_json;
  ddlm::JobSpec from_json;
  if (!google::protobuf::util::MessageToJsonString(spec, &as_json).ok() ||
      !google::protobuf::util::JsonStringToMessage(as_json, &from_json).ok() ||
      !MessageDifferencer::Equals(from_json, spec)) {
    Fail("a valid spec changes through JSON");
  }
  if (!ddlm::ValidateJobSpec(*from_text).ok()) Fail("a valid spec is invalid after a round trip");
  // A valid spec's derived sizes are computable without overflow, and consistent: a
  // checkpoint's bound holds at least the weights, in float32.
  const int64_t parameters = ddlm::ParameterCount(spec.model(), 33278);
  const int64_t bound = ddlm::MaxCheckpointBytes(spec, 33278, 200000, spec.num_workers() > 0 ? spec.num_workers() : 1);
  if (parameters < 0) Fail("a negative parameter count");
  if (bound / 4 < parameters) Fail("a checkpoint's bound is smaller than its weights");
  return 0;
}
