#include "common/base/config.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "common/base/file_io.h"

namespace ddlm {
namespace {

class CollectingErrors : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    errors_.push_back(absl::StrCat("line ", line + 1, ", column ", column + 1, ": ", message));
  }
  void AddWarning(int line, int column, const std::string& message) override { AddError(line, column, message); }
  const std::vector<std::string>& errors() const { return errors_; }

 private:
  std::vector<std::string> errors_;
};

template <typename T>
absl::Status CheckAtLeast(absl::string_view field, T value, T min) {
  if (value >= min) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(field, " must be >= ", min, ", got ", value));
}

template <typename T>
absl::Status CheckAtMost(absl::string_view field, T value, T max) {
  if (value <= max) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(field, " must be <= ", max, ", got ", value));
}

// Far beyond any model or batch this trainer can hold, and low enough that a model's
// size and a checkpoint's bound (model_size.h, checkpoint_format.h) stay exact.
constexpr int32_t kMaxWidth = 1 << 16;   // emsize, nhid, batch sizes, bptt.
constexpr int32_t kMaxLayers = 1 << 10;  // nlayers.

}  // namespace

absl::StatusOr<JobSpec> ParseJobSpecText(absl::string_view text, absl::string_view source) {
  JobSpec spec;
  CollectingErrors errors;
  google::protobuf::TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(std::string(text), &spec)) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot parse job spec ", source, ": ", absl::StrJoin(errors.errors(), "; ")));
  }
  return spec;
}

absl::StatusOr<JobSpec> LoadJobSpec(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) {
    return absl::Status(text.status().code(), absl::StrCat("config file ", text.status().message()));
  }
  absl::StatusOr<JobSpec> spec = ParseJobSpecText(*text, path);
  if (!spec.ok()) return spec.status();
  ApplyDefaults(&*spec);
  absl::Status valid = ValidateJobSpec(*spec);
  if (!valid.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("config file ", path, ": ", valid.message()));
  }
  return spec;
}

void ApplyDefaults(JobSpec* spec) {
  DataConfig* d = spec->mutable_data();
  if (!d->has_batch_size()) d->set_batch_size(20);
  if (!d->has_eval_batch_size()) d->set_eval_batch_size(10);
  if (!d->has_bptt()) d->set_bptt(35);
  ModelConfig* m = spec->mutable_model();
  if (m->type() == MODEL_TYPE_UNSPECIFIED) m->set_type(LSTM);
  if (!m->has_emsize()) m->set_emsize(200);
  if (!m->has_nhid()) m->set_nhid(200);
  if (!m->has_nlayers()) m->set_nlayers(2);
  if (!m->has_dropout()) m->set_dropout(0.2f);
  if (!m->has_nhead()) m->set_nhead(2);
  if (!m->has_layer_dropout() && m->type() == TRANSFORMER) m->set_layer_dropout(kDefaultTransformerLayerDropout);
  OptimizerConfig* o = spec->mutable_optimizer();
  if (o->type() == OPTIMIZER_TYPE_UNSPECIFIED) o->set_type(SGD);
  if (!o->has_lr()) o->set_lr(20.0);
  if (!o->has_clip()) o->set_clip(0.25);
  if (!o->has_weight_decay()) o->set_weight_decay(0.01);
  if (!o->has_anneal_factor()) o->set_anneal_factor(4.0);
  ScheduleConfig* s = spec->mutable_schedule();
  if (!s->has_epochs()) s->set_epochs(40);
  if (!s->has_seed()) s->set_seed(1111);
  if (!s->has_log_interval()) s->set_log_interval(200);
  if (!s->has_max_batches_per_epoch()) s->set_max_batches_per_epoch(0);
  if (!s->has_threads()) s->set_threads(0);
  if (s->precision() == PRECISION_UNSPECIFIED) s->set_precision(FP32);
  if (s->allreduce_dtype() == PRECISION_UNSPECIFIED) s->set_allreduce_dtype(FP32);
  if (!s->has_allreduce_touched_rows()) s->set_allreduce_touched_rows(true);
  CheckpointConfig* c = spec->mutable_checkpoint();
  if (c->path().empty()) c->set_path("model.pt");
  if (!c->has_every_n_steps()) c->set_every_n_steps(0);
  if (!c->has_keep_last()) c->set_keep_last(3);
  if (!spec->has_num_workers()) spec->set_num_workers(1);
  if (!spec->has_max_restarts()) spec->set_max_restarts(3);
  if (!spec->has_min_workers()) spec->set_min_workers(spec->num_workers());
}

namespace {

// Whether `text` is well-formed UTF-8 (no overlong forms, surrogates or code points
// above U+10FFFF), as protobuf requires of a string field on the wire.
bool IsValidUtf8(absl::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    int extra = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      extra = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + extra >= text.size()) return false;  // Cut short.
    for (int k = 1; k <= extra; ++k) {
      const unsigned char next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (next & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += extra + 1;
  }
  return true;
}

}  // namespace

absl::Status ValidateJobSpec(const JobSpec& spec) {
  // Strings go over gRPC as protobuf strings, which must be UTF-8.
  for (auto [field, value] : {std::pair<const char*, const std::string*>{"name", &spec.name()},
                              {"data.path", &spec.data().path()},
                              {"checkpoint.path", &spec.checkpoint().path()}}) {
    if (!IsValidUtf8(*value)) return absl::InvalidArgumentError(absl::StrCat(field, " is not valid UTF-8"));
  }
  const DataConfig& d = spec.data();
  if (d.path().empty()) {
    return absl::InvalidArgumentError("data.path is empty: name a directory holding train.txt, valid.txt and test.txt");
  }
  for (absl::Status s :
       {CheckAtLeast("data.batch_size", d.batch_size(), 1),
        CheckAtLeast("data.eval_batch_size", d.eval_batch_size(), 1), CheckAtLeast("data.bptt", d.bptt(), 1),
        CheckAtMost("data.batch_size", d.batch_size(), kMaxWidth),
        CheckAtMost("data.eval_batch_size", d.eval_batch_size(), kMaxWidth),
        CheckAtMost("data.bptt", d.bptt(), kMaxWidth)}) {
    if (!s.ok()) return s;
  }
  const ModelConfig& m = spec.model();
  if (!ModelType_IsValid(m.type()) || m.type() == MODEL_TYPE_UNSPECIFIED) {
    return absl::InvalidArgumentError(absl::StrCat("model.type ", m.type(), " is not a model type"));
  }
  for (absl::Status s :
       {CheckAtLeast("model.emsize", m.emsize(), 1), CheckAtLeast("model.nhid", m.nhid(), 1),
        CheckAtLeast("model.nlayers", m.nlayers(), 1), CheckAtLeast("model.nhead", m.nhead(), 1),
        CheckAtMost("model.emsize", m.emsize(), kMaxWidth), CheckAtMost("model.nhid", m.nhid(), kMaxWidth),
        CheckAtMost("model.nlayers", m.nlayers(), kMaxLayers)}) {
    if (!s.ok()) return s;
  }
  if (!(m.dropout() >= 0.0f && m.dropout() < 1.0f)) {
    return absl::InvalidArgumentError(absl::StrCat("model.dropout must be in [0, 1), got ", m.dropout()));
  }
  if (m.has_layer_dropout() && m.type() != TRANSFORMER) {
    return absl::InvalidArgumentError(
        "model.layer_dropout applies to TRANSFORMER models only (a recurrent model's model.dropout is also its "
        "dropout between layers)");
  }
  if (!(m.layer_dropout() >= 0.0f && m.layer_dropout() < 1.0f)) {
    return absl::InvalidArgumentError(absl::StrCat("model.layer_dropout must be in [0, 1), got ", m.layer_dropout()));
  }
  if (m.type() == TRANSFORMER) {
    if (m.emsize() % m.nhead() != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("model.nhead (", m.nhead(), ") must divide model.emsize (", m.emsize(), ")"));
    }
    if (m.tied()) {
      return absl::InvalidArgumentError("model.tied is not supported by the TRANSFORMER model");
    }
    if (d.bptt() > 5000) {
      return absl::InvalidArgumentError(
          absl::StrCat("data.bptt must be <= 5000 for TRANSFORMER (the positional encoding's length), got ", d.bptt()));
    }
  } else if (m.tied() && m.nhid() != m.emsize()) {
    return absl::InvalidArgumentError(
        absl::StrCat("model.tied needs model.nhid == model.emsize, got nhid ", m.nhid(), " and emsize ", m.emsize()));
  }
  const OptimizerConfig& o = spec.optimizer();
  if (!OptimizerType_IsValid(o.type()) || o.type() == OPTIMIZER_TYPE_UNSPECIFIED) {
    return absl::InvalidArgumentError(absl::StrCat("optimizer.type ", o.type(), " is not an optimizer type"));
  }
  if (!(o.lr() > 0.0) || !std::isfinite(o.lr())) {
    return absl::InvalidArgumentError(absl::StrCat("optimizer.lr must be > 0, got ", o.lr()));
  }
  if (!(o.clip() >= 0.0) || !std::isfinite(o.clip())) {
    return absl::InvalidArgumentError(absl::StrCat("optimizer.clip must be >= 0, got ", o.clip()));
  }
  if (!(o.weight_decay() >= 0.0)) {
    return absl::InvalidArgumentError(absl::StrCat("optimizer.weight_decay must be >= 0, got ", o.weight_decay()));
  }
  if (!(o.anneal_factor() >= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat("optimizer.anneal_factor must be >= 1, got ", o.anneal_factor()));
  }
  const ScheduleConfig& s = spec.schedule();
  for (absl::Status st :
       {CheckAtLeast("schedule.epochs", s.epochs(), 1), CheckAtLeast("schedule.log_interval", s.log_interval(), 1),
        CheckAtLeast("schedule.threads", s.threads(), 0)}) {
    if (!st.ok()) return st;
  }
  if (!Precision_IsValid(s.precision())) {
    return absl::InvalidArgumentError(
        absl::StrCat("schedule.precision ", s.precision(), " is not a precision (FP32 or BF16)"));
  }
  if (!Precision_IsValid(s.allreduce_dtype())) {
    return absl::InvalidArgumentError(absl::StrCat("schedule.allreduce_dtype ", s.allreduce_dtype(),
                                                   " is not a type to all-reduce in (FP32 or BF16)"));
  }
  if (s.max_batches_per_epoch() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("schedule.max_batches_per_epoch must be >= 0, got ", s.max_batches_per_epoch()));
  }
  const CheckpointConfig& c = spec.checkpoint();
  if (c.every_n_steps() < 0) {
    return absl::InvalidArgumentError(absl::StrCat("checkpoint.every_n_steps must be >= 0, got ", c.every_n_steps()));
  }
  if (c.keep_last() < 1) {
    return absl::InvalidArgumentError(absl::StrCat("checkpoint.keep_last must be >= 1, got ", c.keep_last()));
  }
  if (spec.num_workers() < 1) {
    return absl::InvalidArgumentError(absl::StrCat("num_workers must be >= 1, got ", spec.num_workers()));
  }
  if (spec.min_workers() < 1 || spec.min_workers() > spec.num_workers()) {
    return absl::InvalidArgumentError(
        absl::StrCat("min_workers must be in [1, num_workers = ", spec.num_workers(), "], got ", spec.min_workers()));
  }
  if (spec.max_restarts() < 0) {
    return absl::InvalidArgumentError(absl::StrCat("max_restarts must be >= 0, got ", spec.max_restarts()));
  }
  return absl::OkStatus();
}

absl::StatusOr<ModelType> ParseModelType(absl::string_view name) {
  std::string upper = absl::AsciiStrToUpper(name);
  ModelType type;
  if (ModelType_Parse(upper, &type) && type != MODEL_TYPE_UNSPECIFIED) return type;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown model type '", name, "': expected RNN_TANH, RNN_RELU, LSTM, GRU or Transformer"));
}

}  // namespace ddlm
