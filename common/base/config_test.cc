#include "common/base/config.h"

#include <dirent.h>

#include "gtest/gtest.h"

namespace ddlm {
namespace {

absl::Status Check(const std::string& text) {
  absl::StatusOr<JobSpec> spec = ParseJobSpecText(text, "test.textproto");
  if (!spec.ok()) return spec.status();
  ApplyDefaults(&*spec);
  return ValidateJobSpec(*spec);
}

void ExpectRejected(const std::string& text, const std::string& mentions) {
  absl::Status s = Check(text);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << text;
  EXPECT_NE(s.message().find(mentions), absl::string_view::npos)
      << "'" << s.message() << "' should mention '" << mentions << "'";
}

TEST(ConfigTest, DefaultsAreUpstreams) {
  absl::StatusOr<JobSpec> spec = ParseJobSpecText("data { path: 'd' }", "x");
  ASSERT_TRUE(spec.ok());
  ApplyDefaults(&*spec);
  EXPECT_TRUE(ValidateJobSpec(*spec).ok());
  EXPECT_EQ(spec->model().type(), LSTM);
  EXPECT_EQ(spec->model().emsize(), 200);
  EXPECT_EQ(spec->model().nhid(), 200);
  EXPECT_EQ(spec->model().nlayers(), 2);
  EXPECT_FLOAT_EQ(spec->model().dropout(), 0.2f);
  EXPECT_FALSE(spec->model().has_layer_dropout());  // Recurrent models have none.
  EXPECT_EQ(spec->optimizer().lr(), 20.0);
  EXPECT_EQ(spec->optimizer().clip(), 0.25);
  EXPECT_EQ(spec->data().batch_size(), 20);
  EXPECT_EQ(spec->data().eval_batch_size(), 10);
  EXPECT_EQ(spec->data().bptt(), 35);
  EXPECT_EQ(spec->schedule().seed(), 1111u);
  EXPECT_EQ(spec->schedule().epochs(), 40);
  EXPECT_EQ(spec->max_restarts(), 3);
  EXPECT_EQ(spec->min_workers(), spec->num_workers());
  EXPECT_EQ(spec->schedule().log_interval(), 200);
  EXPECT_EQ(spec->schedule().allreduce_dtype(), FP32);
  EXPECT_TRUE(spec->schedule().allreduce_touched_rows());
}

TEST(ConfigTest, TransformerLayerDropoutDefaultsToNnTransformers) {
  absl::StatusOr<JobSpec> spec = ParseJobSpecText("data { path: 'd' } model { type: TRANSFORMER }", "x");
  ASSERT_TRUE(spec.ok());
  ApplyDefaults(&*spec);
  EXPECT_TRUE(ValidateJobSpec(*spec).ok());
  EXPECT_FLOAT_EQ(spec->model().layer_dropout(), 0.1f);
  EXPECT_TRUE(Check("data { path: 'd' } model { type: TRANSFORMER layer_dropout: 0 }").ok());
  ExpectRejected("data { path: 'd' } model { type: TRANSFORMER layer_dropout: 1 }",
                 "model.layer_dropout must be in [0, 1), got 1");
  ExpectRejected("data { path: 'd' } model { type: TRANSFORMER layer_dropout: -0.5 }", "model.layer_dropout");
  ExpectRejected("data { path: 'd' } model { type: GRU layer_dropout: 0.1 }",
                 "model.layer_dropout applies to TRANSFORMER models only");
}

TEST(ConfigTest, ExplicitZeroIsNotDefault) {
  ExpectRejected("data { path: 'd' bptt: 0 }", "data.bptt must be >= 1, got 0");
}

TEST(ConfigTest, RejectsBadValuesNamingTheField) {
  ExpectRejected("data { path: 'd' } optimizer { lr: -1 }", "optimizer.lr must be > 0, got -1");
  ExpectRejected("data { path: 'd' } optimizer { lr: 0 }", "optimizer.lr");
  ExpectRejected("data { path: 'd' batch_size: -3 }", "data.batch_size");
  ExpectRejected("data { path: 'd' } model { type: TRANSFORMER emsize: 200 nhead: 3 }",
                 "model.nhead (3) must divide model.emsize (200)");
  ExpectRejected("data { path: 'd' } model { emsize: 100 nhid: 200 tied: true }",
                 "model.tied needs model.nhid == model.emsize");
  ExpectRejected("data { path: 'd' } model { dropout: 1.0 }", "model.dropout must be in [0, 1)");
  ExpectRejected("data { path: 'd' } schedule { epochs: 0 }", "schedule.epochs");
  ExpectRejected("data { path: 'd' } optimizer { clip: -0.5 }", "optimizer.clip");
  ExpectRejected("model { emsize: 10 }", "data.path is empty");
  ExpectRejected("data { path: 'd' } num_workers: 0", "num_workers");
  ExpectRejected("data { path: 'd' } max_restarts: -1", "max_restarts");
  ExpectRejected("data { path: 'd' } num_workers: 2 min_workers: 3", "min_workers must be in [1, num_workers = 2]");
  ExpectRejected("data { path: 'd' } min_workers: 0", "min_workers");
  ExpectRejected("data { path: 'd' } schedule { allreduce_dtype: 7 }", "allreduce_dtype");
  ExpectRejected("data { path: 'd' } schedule { allreduce_dtype: FP16 }", "allreduce_dtype");
  // Sizes past any model this trainer holds (a fuzzer found nhid 1,111,111,118 made the
  // model's size overflow).
  ExpectRejected("data { path: 'd' } model { nhid: 1111111118 }", "model.nhid must be <= 65536, got 1111111118");
  ExpectRejected("data { path: 'd' } model { emsize: 65537 }", "model.emsize must be <= 65536");
  ExpectRejected("data { path: 'd' } model { nlayers: 1025 }", "model.nlayers must be <= 1024");
  ExpectRejected("data { path: 'd' batch_size: 70000 }", "data.batch_size must be <= 65536");
  ExpectRejected("data { path: 'd' bptt: 70000 }", "data.bptt must be <= 65536");
}

// Found by the job_spec fuzzer's round-trip property: a string that is not UTF-8 parsed
// from a config file, passed validation, and could not be sent over gRPC.
TEST(ConfigTest, RejectsStringsThatAreNotUtf8NamingTheField) {
  JobSpec spec;
  spec.mutable_data()->set_path("corpus");
  ApplyDefaults(&spec);
  ASSERT_TRUE(ValidateJobSpec(spec).ok());
  for (const char* bad : {"\xFF", "a\xC3", "\xC0\x80", "\xED\xA0\x80", "\xF4\x90\x80\x80"}) {
    JobSpec s = spec;
    s.mutable_data()->set_path(bad);
    EXPECT_NE(ValidateJobSpec(s).message().find("data.path is not valid UTF-8"), absl::string_view::npos) << bad;
    s = spec;
    s.set_name(bad);
    EXPECT_EQ(ValidateJobSpec(s).message(), "name is not valid UTF-8") << bad;
  }
  for (const char* good : {"caf\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "\xF4\x8F\xBF\xBF"}) {
    JobSpec s = spec;
    s.mutable_checkpoint()->set_path(good);
    EXPECT_TRUE(ValidateJobSpec(s).ok()) << good;
  }
}

TEST(ConfigTest, RejectsUnknownFieldsAndSyntaxWithPosition) {
  ExpectRejected("data { path: 'd' }\nmodel { hidden_size: 3 }", "line 2");
  ExpectRejected("data { path: 'd' }\nmodel { hidden_size: 3 }", "hidden_size");
  ExpectRejected("data { path: 'd' } model { type: LSTMX }", "LSTMX");
  ExpectRejected("data { path: ", "line 1");
}

TEST(ConfigTest, LoadJobSpecNamesTheFile) {
  absl::StatusOr<JobSpec> spec = LoadJobSpec("/nonexistent/job.textproto");
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(spec.status().message().find("/nonexistent/job.textproto"), absl::string_view::npos);
}

TEST(ConfigTest, ParsesModelTypeNames) {
  EXPECT_EQ(*ParseModelType("Transformer"), TRANSFORMER);
  EXPECT_EQ(*ParseModelType("RNN_TANH"), RNN_TANH);
  EXPECT_FALSE(ParseModelType("CNN").ok());
}

TEST(ConfigTest, EveryShippedConfigIsValid) {
  DIR* dir = opendir("configs");
  ASSERT_NE(dir, nullptr);
  int count = 0;
  while (dirent* e = readdir(dir)) {
    std::string name = e->d_name;
    if (name.size() < 10 || name.substr(name.size() - 10) != ".textproto") continue;
    absl::StatusOr<JobSpec> spec = LoadJobSpec("configs/" + name);
    EXPECT_TRUE(spec.ok()) << name << ": " << spec.status();
    ++count;
  }
  closedir(dir);
  EXPECT_GE(count, 9);  // quickstart + 8 upstream recipes.
}

}  // namespace
}  // namespace ddlm
