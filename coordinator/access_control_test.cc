#include "coordinator/access_control.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ddlm {
namespace {

using ::testing::HasSubstr;

constexpr char kTokens[] =
    "# token role name\n"
    "aaaaaaaaaaaaaaaa0001 admin alice\n"
    "\n"
    "bbbbbbbbbbbbbbbb0002\tuser  bob\n"
    "cccccccccccccccc0003 user carol\n"
    "dddddddddddddddd0004 worker rack1\n";

AccessControl Table() {
  auto access = AccessControl::Parse(kTokens, "tokens");
  EXPECT_TRUE(access.ok()) << access.status();
  return access.ok() ? *access : AccessControl();
}

TEST(AccessControlTest, TokensAreAuthenticatedByTheirBearerHeader) {
  const AccessControl access = Table();
  EXPECT_FALSE(access.open());
  auto bob = access.Authenticate("Bearer bbbbbbbbbbbbbbbb0002");
  ASSERT_TRUE(bob.ok()) << bob.status();
  EXPECT_EQ(bob->name, "bob");
  EXPECT_EQ(bob->role, Role::kUser);
  EXPECT_EQ(access.Authenticate("Bearer dddddddddddddddd0004")->role, Role::kWorker);
  EXPECT_EQ(access.Authenticate(std::nullopt).status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(access.Authenticate("Bearer wrongwrongwrongwrong").status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(access.Authenticate("bbbbbbbbbbbbbbbb0002").status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(access.Authenticate("Basic bbbbbbbbbbbbbbbb0002").status().code(), absl::StatusCode::kUnauthenticated);
  // The refusal never echoes what was sent.
  EXPECT_THAT(std::string(access.Authenticate("Bearer secretsecretsecret").status().message()),
              ::testing::Not(HasSubstr("secret")));
}

TEST(AccessControlTest, WithoutTokensEveryoneIsLetThrough) {
  const AccessControl open;
  EXPECT_TRUE(open.open());
  auto caller = open.Authenticate(std::nullopt);
  ASSERT_TRUE(caller.ok());
  EXPECT_EQ(caller->role, Role::kOpen);
  EXPECT_TRUE(AccessControl::AllowJobService(*caller).ok());
  EXPECT_TRUE(AccessControl::AllowWorkerService(*caller).ok());
  EXPECT_TRUE(AccessControl::AllowJob(*caller, "job-1", "bob").ok());
}

TEST(AccessControlTest, RolesKeepToTheirService) {
  const AccessControl access = Table();
  const Caller alice = *access.Authenticate("Bearer aaaaaaaaaaaaaaaa0001");
  const Caller bob = *access.Authenticate("Bearer bbbbbbbbbbbbbbbb0002");
  const Caller rack1 = *access.Authenticate("Bearer dddddddddddddddd0004");
  EXPECT_TRUE(AccessControl::AllowJobService(alice).ok());
  EXPECT_TRUE(AccessControl::AllowJobService(bob).ok());
  EXPECT_EQ(AccessControl::AllowJobService(rack1).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(AccessControl::AllowWorkerService(rack1).ok());
  EXPECT_EQ(AccessControl::AllowWorkerService(alice).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(AccessControl::AllowWorkerService(bob).code(), absl::StatusCode::kPermissionDenied);
}

TEST(AccessControlTest, AUserActsOnlyOnTheirOwnJobsAndAnAdminOnAll) {
  const AccessControl access = Table();
  const Caller alice = *access.Authenticate("Bearer aaaaaaaaaaaaaaaa0001");
  const Caller bob = *access.Authenticate("Bearer bbbbbbbbbbbbbbbb0002");
  const Caller carol = *access.Authenticate("Bearer cccccccccccccccc0003");
  EXPECT_TRUE(AccessControl::AllowJob(bob, "job-3", bob.name).ok());
  EXPECT_TRUE(AccessControl::AllowJob(alice, "job-3", bob.name).ok());
  const absl::Status denied = AccessControl::AllowJob(carol, "job-3", bob.name);
  EXPECT_EQ(denied.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(denied.message(), HasSubstr("job-3"));
}

TEST(AccessControlTest, AMalformedTokensFileIsRefusedNamingTheLine) {
  struct Case {
    const char* text;
    const char* error;
  };
  for (const Case& c : {Case{"aaaaaaaaaaaaaaaa0001 admin\n", "tokens:1: expected 'TOKEN ROLE NAME'"},
                        Case{"# x\naaaaaaaaaaaaaaaa0001 root alice\n", "tokens:2: role 'root'"},
                        Case{"short admin alice\n", "tokens:1: the token is shorter than 16"},
                        Case{"aaaaaaaaaaaaaaaa0001 admin alice\naaaaaaaaaaaaaaaa0001 user bob\n",
                             "tokens:2: this token is already given"},
                        Case{"aaaaaaaa\vaaaaaaaa0001 admin alice\n", "tokens:1: the token has a character"},
                        Case{"# only a comment\n", "tokens: no tokens"}}) {
    auto access = AccessControl::Parse(c.text, "tokens");
    ASSERT_FALSE(access.ok()) << c.text;
    EXPECT_EQ(access.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(access.status().message(), HasSubstr(c.error));
  }
  EXPECT_EQ(AccessControl::Load("/nonexistent/tokens").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace ddlm
