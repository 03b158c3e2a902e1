#include "common/training/checkpoint.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/checkpoint_format.h"
#include "common/base/file_io.h"
#include "common/base/status_macros.h"

namespace ddlm {
namespace {

constexpr char kRngName[] = "rng/cpu";
constexpr char kCudaRngName[] = "rng/cuda";
constexpr char kOptimizerName[] = "optimizer/archive";
constexpr char kParamPrefix[] = "param/";
constexpr char kHiddenPrefix[] = "hidden/";

absl::StatusOr<TensorDType> ToProtoDType(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat32: return FLOAT32;
    case torch::kFloat64: return FLOAT64;
    case torch::kInt64: return INT64;
    case torch::kUInt8: return UINT8;
    default:
      return absl::InvalidArgumentError(absl::StrCat("checkpoints cannot hold tensors of type ", c10::toString(t)));
  }
}

absl::StatusOr<torch::ScalarType> FromProtoDType(TensorDType t) {
  switch (t) {
    case FLOAT32: return torch::kFloat32;
    case FLOAT64: return torch::kFloat64;
    case INT64: return torch::kInt64;
    case UINT8: return torch::kUInt8;
    default: return absl::DataLossError(absl::StrCat("unknown tensor dtype ", t));
  }
}

std::string ShapeString(c10::IntArrayRef shape) { return absl::StrCat("[", absl::StrJoin(shape, ", "), "]"); }

torch::Tensor BytesToTensor(const std::string& bytes) {
  torch::Tensor t = torch::empty({static_cast<int64_t>(bytes.size())}, torch::kUInt8);
  if (!bytes.empty()) std::memcpy(t.data_ptr(), bytes.data(), bytes.size());
  return t;
}

std::string TensorToBytes(const torch::Tensor& t) {
  return std::string(static_cast<const char*>(t.data_ptr()), static_cast<size_t>(t.numel()));
}

}  // namespace

absl::StatusOr<std::string> SerializeCheckpoint(const Checkpoint& checkpoint) {
  std::vector<torch::Tensor> host;  // Keeps the bytes the entries point at alive.
  std::vector<CheckpointTensorBytes> tensors;
  for (const auto& [name, tensor] : checkpoint.tensors) {
    torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
    DDLM_ASSIGN_OR_RETURN(TensorDType dtype, ToProtoDType(t.scalar_type()));
    CheckpointTensorBytes& entry = tensors.emplace_back();
    entry.name = name;
    entry.dtype = dtype;
    entry.shape.assign(t.sizes().begin(), t.sizes().end());
    entry.bytes = absl::string_view(static_cast<const char*>(t.data_ptr()), t.nbytes());
    host.push_back(std::move(t));
  }
  return EncodeCheckpoint(checkpoint.header, tensors);
}

absl::StatusOr<Checkpoint> ParseCheckpoint(absl::string_view bytes, absl::string_view source) {
  DDLM_ASSIGN_OR_RETURN(CheckpointView view, ParseCheckpointView(bytes, source));
  Checkpoint checkpoint;
  for (const CheckpointView::Tensor& t : view.tensors) {
    DDLM_ASSIGN_OR_RETURN(torch::ScalarType dtype, FromProtoDType(t.entry.dtype()));
    torch::Tensor tensor = torch::empty(std::vector<int64_t>(t.entry.shape().begin(), t.entry.shape().end()), dtype);
    if (!t.bytes.empty()) std::memcpy(tensor.data_ptr(), t.bytes.data(), t.bytes.size());
    checkpoint.tensors.emplace(t.entry.name(), std::move(tensor));
  }
  checkpoint.header = std::move(view.header);
  return checkpoint;
}

absl::Status WriteCheckpointFile(const std::string& path, const Checkpoint& checkpoint) {
  DDLM_ASSIGN_OR_RETURN(std::string bytes, SerializeCheckpoint(checkpoint));
  return WriteFileAtomically(path, bytes);
}

absl::StatusOr<Checkpoint> ReadCheckpointFile(const std::string& path) {
  absl::StatusOr<std::string> bytes = ReadFile(path);
  if (!bytes.ok()) {
    return absl::Status(bytes.status().code(), absl::StrCat("checkpoint ", bytes.status().message()));
  }
  return ParseCheckpoint(*bytes, path);
}

void CaptureModel(LanguageModelImpl& model, const RecurrentState* state, Checkpoint* checkpoint) {
  for (const auto& item : model.named_parameters(/*recurse=*/true)) {
    checkpoint->tensors[absl::StrCat(kParamPrefix, item.key())] =
        item.value().detach().to(torch::kCPU, /*non_blocking=*/false, /*copy=*/true).contiguous();
  }
  if (state != nullptr) {
    for (size_t i = 0; i < state->size(); ++i) {
      checkpoint->tensors[absl::StrCat(kHiddenPrefix, i)] =
          (*state)[i].detach().to(torch::kCPU, /*non_blocking=*/false, /*copy=*/true).contiguous();
    }
  }
}

absl::Status RestoreModel(const Checkpoint& checkpoint, LanguageModelImpl& model) {
  size_t params_in_checkpoint = 0;
  for (const auto& [name, tensor] : checkpoint.tensors) {
    if (name.rfind(kParamPrefix, 0) == 0) ++params_in_checkpoint;
  }
  auto params = model.named_parameters(/*recurse=*/true);
  if (params.size() != params_in_checkpoint) {
    return absl::FailedPreconditionError(absl::StrCat("checkpoint holds ", params_in_checkpoint,
                                                      " parameter tensors, the model has ", params.size(),
                                                      " (another model type or tying?)"));
  }
  torch::NoGradGuard no_grad;
  for (auto& item : params) {
    auto it = checkpoint.tensors.find(absl::StrCat(kParamPrefix, item.key()));
    if (it == checkpoint.tensors.end()) {
      // Written before the recurrent layers were one module each.
      it = checkpoint.tensors.find(absl::StrCat(kParamPrefix, FormerParameterName(item.key())));
    }
    if (it == checkpoint.tensors.end()) {
      return absl::FailedPreconditionError(absl::StrCat("checkpoint has no parameter '", item.key(), "'"));
    }
    if (it->second.sizes() != item.value().sizes() || it->second.scalar_type() != item.value().scalar_type()) {
      return absl::FailedPreconditionError(absl::StrCat("parameter '", item.key(), "' is ",
                                                        ShapeString(it->second.sizes()), " in the checkpoint but ",
                                                        ShapeString(item.value().sizes()), " in the model"));
    }
    item.value().copy_(it->second);
  }
  return absl::OkStatus();
}

RecurrentState RestoreState(const Checkpoint& checkpoint) {
  RecurrentState state;
  for (size_t i = 0;; ++i) {
    auto it = checkpoint.tensors.find(absl::StrCat(kHiddenPrefix, i));
    if (it == checkpoint.tensors.end()) break;
    state.push_back(it->second.clone());
  }
  return state;
}

namespace {

at::Generator DefaultGenerator(const torch::Device& device) { return at::globalContext().defaultGenerator(device); }

absl::Status SetGeneratorState(const torch::Device& device, const torch::Tensor& state, absl::string_view name) {
  at::Generator gen = DefaultGenerator(device);
  std::lock_guard<std::mutex> lock(gen.mutex());
  try {
    gen.set_state(state);
  } catch (const c10::Error& e) {
    return absl::DataLossError(
        absl::StrCat("checkpoint's generator state (", name, ") is invalid: ", e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

}  // namespace

void CaptureRng(const torch::Device& device, Checkpoint* checkpoint) {
  {
    at::Generator gen = DefaultGenerator(torch::kCPU);
    std::lock_guard<std::mutex> lock(gen.mutex());
    checkpoint->tensors[kRngName] = gen.get_state().clone();
  }
  if (device.is_cuda()) {
    at::Generator gen = DefaultGenerator(device);
    std::lock_guard<std::mutex> lock(gen.mutex());
    checkpoint->tensors[kCudaRngName] = gen.get_state().to(torch::kCPU).clone();
  }
}

absl::Status RestoreRng(const Checkpoint& checkpoint, const torch::Device& device) {
  auto it = checkpoint.tensors.find(kRngName);
  if (it == checkpoint.tensors.end()) {
    return absl::FailedPreconditionError("checkpoint has no generator state (rng/cpu)");
  }
  DDLM_RETURN_IF_ERROR(SetGeneratorState(torch::kCPU, it->second, kRngName));
  // A GPU checkpoint resumed on a CPU ignores the CUDA generator; a CPU checkpoint
  // resumed on a GPU keeps the CUDA generator as seeded from schedule.seed.
  auto cuda = checkpoint.tensors.find(kCudaRngName);
  if (device.is_cuda() && cuda != checkpoint.tensors.end()) {
    DDLM_RETURN_IF_ERROR(SetGeneratorState(device, cuda->second, kCudaRngName));
  }
  return absl::OkStatus();
}

absl::Status CaptureOptimizer(torch::optim::Optimizer& optimizer, Checkpoint* checkpoint) {
  try {
    torch::serialize::OutputArchive archive;
    optimizer.save(archive);
    std::ostringstream out;
    archive.save_to(out);
    checkpoint->tensors[kOptimizerName] = BytesToTensor(out.str());
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("cannot save optimizer state: ", e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

absl::Status RestoreOptimizer(const Checkpoint& checkpoint, const torch::Device& device,
                              torch::optim::Optimizer& optimizer) {
  auto it = checkpoint.tensors.find(kOptimizerName);
  if (it == checkpoint.tensors.end()) {
    return absl::FailedPreconditionError("checkpoint has no optimizer state (optimizer/archive)");
  }
  try {
    std::istringstream in(TensorToBytes(it->second));
    torch::serialize::InputArchive archive;
    archive.load_from(in, device);  // Moment tensors onto the parameters' device.
    optimizer.load(archive);
  } catch (const c10::Error& e) {
    return absl::DataLossError(
        absl::StrCat("checkpoint's optimizer state does not load: ", e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

absl::Status CheckCompatible(const Checkpoint& checkpoint, uint64_t vocabulary_fingerprint, int64_t vocabulary_size,
                             const ModelConfig& model) {
  const CheckpointHeader& h = checkpoint.header;
  if (h.vocabulary_fingerprint() != vocabulary_fingerprint || h.vocabulary_size() != vocabulary_size) {
    return absl::FailedPreconditionError(
        absl::StrCat("checkpoint was trained on another vocabulary (", h.vocabulary_size(), " words, fingerprint ",
                     absl::Hex(h.vocabulary_fingerprint()), "; this corpus has ", vocabulary_size,
                     " words, fingerprint ", absl::Hex(vocabulary_fingerprint), ")"));
  }
  const ModelConfig& saved = h.spec().model();
  auto differ = [](absl::string_view field, auto a, auto b) {
    return absl::FailedPreconditionError(
        absl::StrCat("checkpoint's model.", field, " is ", a, ", the requested model's is ", b));
  };
  if (saved.type() != model.type()) {
    return differ("type", ModelType_Name(saved.type()), ModelType_Name(model.type()));
  }
  if (saved.emsize() != model.emsize()) return differ("emsize", saved.emsize(), model.emsize());
  if (saved.nhid() != model.nhid()) return differ("nhid", saved.nhid(), model.nhid());
  if (saved.nlayers() != model.nlayers()) return differ("nlayers", saved.nlayers(), model.nlayers());
  if (saved.tied() != model.tied()) return differ("tied", saved.tied(), model.tied());
  if (model.type() == TRANSFORMER && saved.nhead() != model.nhead()) {
    return differ("nhead", saved.nhead(), model.nhead());
  }
  return absl::OkStatus();
}

}  // namespace ddlm
