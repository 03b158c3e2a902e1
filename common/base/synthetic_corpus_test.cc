#include "common/base/synthetic_corpus.h"

#include "common/base/corpus.h"
#include "common/base/file_io.h"
#include "gtest/gtest.h"

namespace ddlm {
namespace {

TEST(SyntheticCorpusTest, IsDeterministic) {
  SyntheticCorpus a = MakeSyntheticCorpus(9, 5, 1, 1);
  SyntheticCorpus b = MakeSyntheticCorpus(9, 5, 1, 1);
  EXPECT_EQ(a.train, b.train);
  EXPECT_EQ(a.valid, b.valid);
  EXPECT_NE(a.train, MakeSyntheticCorpus(10, 5, 1, 1).train);
}

TEST(SyntheticCorpusTest, CommittedQuickstartCorpusMatchesTheGenerator) {
  SyntheticCorpus c = MakeQuickstartCorpus();
  EXPECT_EQ(*ReadFile("configs/quickstart_data/train.txt"), c.train);
  EXPECT_EQ(*ReadFile("configs/quickstart_data/valid.txt"), c.valid);
  EXPECT_EQ(*ReadFile("configs/quickstart_data/test.txt"), c.test);
}

TEST(SyntheticCorpusTest, LooksLikeWikiText) {
  SyntheticCorpus c = MakeQuickstartCorpus();
  Dictionary d;
  std::vector<int64_t> ids;
  ASSERT_TRUE(TokenizeText(c.train, "train", &d, &ids).ok());
  EXPECT_GT(ids.size(), 50000u);
  EXPECT_GT(d.size(), 200);
  EXPECT_LT(d.size(), 2000);
  EXPECT_NE(c.train.find(" = "), std::string::npos);
  EXPECT_NE(c.train.find(" \n \n"), std::string::npos);
}

}  // namespace
}  // namespace ddlm
