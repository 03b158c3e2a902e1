#include "common/base/corpus.h"

#include <sys/stat.h>

#include <cstdlib>

#include "common/base/file_io.h"
#include "gtest/gtest.h"

namespace ddlm {
namespace {

std::string TempDir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir ? dir : "/tmp";
}

std::string MakeCorpusDir(const std::string& name, const std::string& train, const std::string& valid,
                          const std::string& test) {
  std::string dir = TempDir() + "/" + name;
  ::mkdir(dir.c_str(), 0755);  // May already exist.
  EXPECT_TRUE(WriteFileAtomically(dir + "/train.txt", train).ok());
  EXPECT_TRUE(WriteFileAtomically(dir + "/valid.txt", valid).ok());
  EXPECT_TRUE(WriteFileAtomically(dir + "/test.txt", test).ok());
  return dir;
}

TEST(CorpusTest, TokenizesLikeWordLanguageModel) {
  // WikiText style: leading/trailing spaces, a blank line " \n", a heading.
  const std::string train = " = Title = \n \n the cat sat . \n";
  const std::string valid = " the dog sat . \n";
  const std::string test = " the cat ran \n";
  absl::StatusOr<Corpus> c = LoadCorpus(MakeCorpusDir("wt", train, valid, test));
  ASSERT_TRUE(c.ok()) << c.status();
  // train: "= Title = <eos>" (4) + "<eos>" (1) + "the cat sat . <eos>" (5).
  EXPECT_EQ(c->train.size(), 10u);
  EXPECT_EQ(c->valid.size(), 5u);
  EXPECT_EQ(c->test.size(), 4u);
  // Ids in order of first appearance across train, valid, test; <eos> is added when
  // the first line ends, after that line's words.
  const std::vector<std::string> expected = {"=", "Title", "<eos>", "the", "cat", "sat", ".", "dog", "ran"};
  EXPECT_EQ(c->dictionary.words(), expected);
  EXPECT_EQ(c->train[0], 0);
  EXPECT_EQ(c->train[3], c->dictionary.Find("<eos>"));
  EXPECT_EQ(c->test.back(), c->dictionary.Find("<eos>"));
}

TEST(CorpusTest, SplitsOnPythonWhitespaceAndLineEndings) {
  Dictionary d;
  std::vector<int64_t> ids;
  // Tab, no-break space (U+00A0), CRLF, CR, and a last line without a newline.
  ASSERT_TRUE(TokenizeText("a\tb\xC2\xA0"
                           "c\r\nd\re",
                           "x", &d, &ids)
                  .ok());
  std::vector<std::string> words;
  for (int64_t id : ids) words.push_back(d.Word(id));
  EXPECT_EQ(words, (std::vector<std::string>{"a", "b", "c", "<eos>", "d", "<eos>", "e", "<eos>"}));
}

TEST(CorpusTest, NonBreakingCharactersStayInsideWords) {
  Dictionary d;
  std::vector<int64_t> ids;
  ASSERT_TRUE(TokenizeText("caf\xC3\xA9 na\xC3\xAFve\n", "x", &d, &ids).ok());
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(d.Word(ids[0]), "caf\xC3\xA9");
}

TEST(CorpusTest, RejectsInvalidUtf8NamingTheLine) {
  Dictionary d;
  std::vector<int64_t> ids;
  absl::Status s = TokenizeText("ok line\nbad \xFF byte\n", "train.txt", &d, &ids);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("train.txt is not valid UTF-8"), absl::string_view::npos) << s;
  EXPECT_NE(s.message().find("line 2"), absl::string_view::npos) << s;
}

TEST(CorpusTest, RejectsEmptyAndMissingFiles) {
  absl::StatusOr<Corpus> empty = LoadCorpus(MakeCorpusDir("empty", "a b\n", "", "c\n"));
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(empty.status().message().find("valid.txt is empty"), absl::string_view::npos);

  absl::StatusOr<Corpus> missing = LoadCorpus(TempDir() + "/no-corpus-here");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("train.txt"), absl::string_view::npos);
}

TEST(CorpusTest, FingerprintDependsOnWordsAndOrder) {
  Dictionary a = Dictionary::FromWords({"ab", "c"});
  Dictionary b = Dictionary::FromWords({"a", "bc"});
  Dictionary c = Dictionary::FromWords({"c", "ab"});
  EXPECT_NE(a.Fingerprint(), b.Fingerprint());
  EXPECT_NE(a.Fingerprint(), c.Fingerprint());
  EXPECT_EQ(a.Fingerprint(), Dictionary::FromWords({"ab", "c"}).Fingerprint());
}

}  // namespace
}  // namespace ddlm
