#ifndef DDLM_COMMON_BASE_MODEL_SIZE_H_
#define DDLM_COMMON_BASE_MODEL_SIZE_H_

// A model's size from its config alone, without LibTorch (no model is built).

#include <cstdint>

#include "proto/config.pb.h"

namespace ddlm {

// The number of parameters (scalars) BuildModel(config, ntoken) (common/training/model.h) has:
// what a checkpoint of it may weigh. Exact for every config ValidateJobSpec accepts;
// INT64_MAX for one too large to count.
int64_t ParameterCount(const ModelConfig& config, int64_t ntoken);

}  // namespace ddlm

#endif  // DDLM_COMMON_BASE_MODEL_SIZE_H_
