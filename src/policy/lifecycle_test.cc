#include "policy/lifecycle.h"

#include <gtest/gtest.h>

#include <set>
#include <utility>

namespace fluidfaas::policy {
namespace {

using S = InstanceState;

TEST(LifecycleTest, EveryPairIsAllowedExactlyWhenInTheTable) {
  const std::set<std::pair<S, S>> allowed = {
      {S::kCold, S::kLoading},          {S::kCold, S::kRetired},
      {S::kLoading, S::kExclusiveHot},  {S::kLoading, S::kTimeSharing},
      {S::kLoading, S::kRetired},       {S::kExclusiveHot, S::kTimeSharing},
      {S::kExclusiveHot, S::kDraining}, {S::kTimeSharing, S::kExclusiveHot},
      {S::kTimeSharing, S::kWarm},      {S::kTimeSharing, S::kDraining},
      {S::kWarm, S::kLoading},          {S::kWarm, S::kCold},
      {S::kDraining, S::kRetired},
  };
  const S all[] = {S::kCold, S::kLoading, S::kExclusiveHot, S::kTimeSharing, S::kWarm, S::kDraining, S::kRetired};
  int valid = 0;
  for (S from : all) {
    for (S to : all) {
      const Status s = CheckTransition(from, to);
      const bool want = allowed.contains({from, to});
      EXPECT_EQ(s.ok(), want) << ToString(from) << " -> " << ToString(to);
      if (!want) {
        EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
        EXPECT_EQ(s.message(),
                  "invalid instance transition " + std::string(ToString(from)) + " -> " + std::string(ToString(to)));
      }
      valid += want;
    }
  }
  EXPECT_EQ(valid, 13);
}

TEST(LifecycleTest, NoStateLoopsOntoItselfAndRetiredIsFinal) {
  EXPECT_FALSE(CheckTransition(S::kWarm, S::kWarm).ok());
  EXPECT_FALSE(CheckTransition(S::kRetired, S::kLoading).ok());
  EXPECT_FALSE(CheckTransition(S::kExclusiveHot, S::kWarm).ok());  // exclusive instances are never evicted
  EXPECT_FALSE(CheckTransition(S::kCold, S::kExclusiveHot).ok());  // nothing runs without loading
}

}  // namespace
}  // namespace fluidfaas::policy
