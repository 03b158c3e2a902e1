#include "coordinator/tensorboard/event_file_writer.h"

#include <cstdlib>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/base/file_io.h"
#include "coordinator/tensorboard/testing_reader.h"
#include "gtest/gtest.h"

namespace ddlm {
namespace {

std::string TestDir(const std::string& name) {
  const std::string dir = absl::StrCat(std::getenv("TEST_TMPDIR"), "/", name);
  (void)RemoveTree(dir);
  return dir;
}

TEST(EventFileWriterTest, WritesAVersionRecordThenScalarEvents) {
  const std::string dir = TestDir("writer") + "/a/b";  // Parents are created.
  const absl::Time t0 = absl::FromUnixSeconds(1700000000);
  auto writer = EventFileWriter::Create(dir, t0, "host1");
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE((*writer)->WriteScalars(7, t0 + absl::Seconds(2), {{"train/loss", 5.5}, {"train/ppl", 244.7}}).ok());
  ASSERT_TRUE((*writer)->WriteScalars(9, t0 + absl::Seconds(3), {{"train/loss", 5.25}}).ok());
  EXPECT_TRUE(absl::StartsWith((*writer)->path(), dir + "/events.out.tfevents.1700000000.host1.")) << (*writer)->path();

  auto events = ReadEventFile((*writer)->path());
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->size(), 3u);
  EXPECT_EQ((*events)[0].file_version(), "brain.Event:2");
  EXPECT_DOUBLE_EQ((*events)[0].wall_time(), 1700000000.0);
  EXPECT_EQ((*events)[1].step(), 7);
  EXPECT_DOUBLE_EQ((*events)[1].wall_time(), 1700000002.0);
  ASSERT_EQ((*events)[1].summary().value_size(), 2);
  EXPECT_EQ((*events)[1].summary().value(0).tag(), "train/loss");
  EXPECT_FLOAT_EQ((*events)[1].summary().value(0).simple_value(), 5.5f);
  EXPECT_EQ((*events)[1].summary().value(1).tag(), "train/ppl");
  EXPECT_FLOAT_EQ((*events)[1].summary().value(1).simple_value(), 244.7f);
  EXPECT_EQ((*events)[2].step(), 9);
}

TEST(EventFileWriterTest, AZeroIsWrittenAsAScalar) {
  const std::string dir = TestDir("zero");
  auto writer = EventFileWriter::Create(dir, absl::FromUnixSeconds(1), "h");
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->WriteScalars(1, absl::FromUnixSeconds(2), {{"train/allreduce_ms_per_batch", 0.0}}).ok());
  auto events = ReadEventFile((*writer)->path());
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->size(), 2u);
  ASSERT_EQ((*events)[1].summary().value_size(), 1);
  EXPECT_TRUE((*events)[1].summary().value(0).has_simple_value());
  EXPECT_EQ((*events)[1].summary().value(0).simple_value(), 0.0f);
}

TEST(EventFileWriterTest, EachWriterGetsAFileOfItsOwn) {
  const std::string dir = TestDir("two");
  const absl::Time t0 = absl::FromUnixSeconds(1700000000);
  auto a = EventFileWriter::Create(dir, t0, "h");
  auto b = EventFileWriter::Create(dir, t0, "h");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE((*a)->path(), (*b)->path());
  EXPECT_EQ(ListDirectory(dir).size(), 2u);
}

TEST(EventFileWriterTest, RecordFramingIsLengthCrcDataCrc) {
  const std::string record = TfRecord("abc");
  ASSERT_EQ(record.size(), 8u + 4 + 3 + 4);
  EXPECT_EQ(record.substr(0, 8), std::string("\x03\0\0\0\0\0\0\0", 8));
  EXPECT_EQ(record.substr(12, 3), "abc");
}

TEST(EventFileWriterTest, AFlippedByteIsCaughtByTheReader) {
  const std::string dir = TestDir("flip");
  auto writer = EventFileWriter::Create(dir, absl::FromUnixSeconds(1), "h");
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->WriteScalars(1, absl::FromUnixSeconds(2), {{"x", 1}}).ok());
  auto contents = ReadFile((*writer)->path());
  ASSERT_TRUE(contents.ok());
  std::string bad = *contents;
  bad[bad.size() - 6] ^= 0x01;  // Inside the last record's payload.
  ASSERT_TRUE(WriteFileAtomically((*writer)->path(), bad).ok());
  auto events = ReadEventFile((*writer)->path());
  EXPECT_EQ(events.status().code(), absl::StatusCode::kDataLoss);
}

TEST(EventFileWriterTest, AnUncreatableDirectoryIsNamed) {
  const std::string file = TestDir("plain_file");
  ASSERT_TRUE(WriteFileAtomically(file, "x").ok());
  auto writer = EventFileWriter::Create(file + "/run", absl::FromUnixSeconds(1), "h");
  ASSERT_FALSE(writer.ok());
  EXPECT_TRUE(absl::StrContains(writer.status().message(), file)) << writer.status();
}

}  // namespace
}  // namespace ddlm
