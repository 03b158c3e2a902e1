// device.h for the CPU build: no CUDA device can exist (ResolveDevice refuses them).

#include "common/training/device.h"

namespace ddlm {

bool BuiltWithCuda() { return false; }

std::string DescribeDevice(const torch::Device& device) { return device.str(); }

void ReleaseCachedDeviceMemory() {}

std::unique_ptr<DeviceEvent> DeviceEvent::Create(const torch::Device& /*device*/) { return nullptr; }

}  // namespace ddlm
