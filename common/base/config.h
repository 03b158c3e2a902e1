#ifndef DDLM_COMMON_BASE_CONFIG_H_
#define DDLM_COMMON_BASE_CONFIG_H_

// Reading, defaulting and validating JobSpec (proto/config.proto).

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/config.pb.h"

namespace ddlm {

// Parses text format. INVALID_ARGUMENT names the line, column and problem (unknown
// field, bad value, syntax). `source` names the text in messages.
absl::StatusOr<JobSpec> ParseJobSpecText(absl::string_view text, absl::string_view source);

// Reads and parses a text-format file, then applies defaults and validates.
absl::StatusOr<JobSpec> LoadJobSpec(const std::string& path);

// nn.Transformer's dropout inside its layers, which upstream keeps: model.layer_dropout
// when unset (also for specs written before the field existed).
inline constexpr float kDefaultTransformerLayerDropout = 0.1f;

// Fills every unset field with word_language_model's default.
void ApplyDefaults(JobSpec* spec);

// INVALID_ARGUMENT naming the first out-of-range field, e.g.
// "data.bptt must be >= 1, got 0". Expects ApplyDefaults to have run.
absl::Status ValidateJobSpec(const JobSpec& spec);

// "LSTM", "TRANSFORMER", ... (upstream's spelling "Transformer" accepted) to the enum;
// ModelType_Name (generated) goes the other way.
absl::StatusOr<ModelType> ParseModelType(absl::string_view name);

}  // namespace ddlm

#endif  // DDLM_COMMON_BASE_CONFIG_H_
