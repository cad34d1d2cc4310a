#include "runtime/residency.h"

#include <gtest/gtest.h>

namespace fluidfaas::runtime {
namespace {

TEST(HostResidencyTest, DropsTheLeastRecentlyUsedCopiesUntilTheNewOneFits) {
  HostResidency books(100);
  EXPECT_TRUE(books.Add({{1, 0}, 0, 40}).empty());
  EXPECT_TRUE(books.Add({{2, 0}, 1, 40}).empty());
  auto dropped = books.Add({{3, 0}, 2, 50});  // 130 > 100: the oldest (1) goes
  ASSERT_EQ(dropped.size(), 1u);
  EXPECT_EQ(dropped[0].key.instance, 1u);
  EXPECT_EQ(books.used_bytes(), 90);
  // Re-adding 2 makes it the most recent; the next squeeze drops 3.
  EXPECT_TRUE(books.Add({{2, 0}, 1, 40}).empty());
  dropped = books.Add({{4, 0}, 0, 30});
  ASSERT_EQ(dropped.size(), 1u);
  EXPECT_EQ(dropped[0].key.instance, 3u);
  EXPECT_EQ(books.used_bytes(), 70);
}

TEST(HostResidencyTest, ACopyOverTheWholeBudgetIsDroppedItself) {
  HostResidency books(100);
  EXPECT_TRUE(books.Add({{1, 0}, 0, 40}).empty());
  auto dropped = books.Add({{2, 0}, 0, 150});
  ASSERT_EQ(dropped.size(), 2u);
  EXPECT_EQ(books.used_bytes(), 0);
  EXPECT_EQ(books.size(), 0u);
}

TEST(HostResidencyTest, RemoveAndRemoveSliceKeepTheBooksExact) {
  HostResidency books(1000);
  (void)books.Add({{1, 0}, 0, 10});
  (void)books.Add({{1, 1}, 1, 20});
  (void)books.Add({{2, 0}, 1, 30});
  EXPECT_TRUE(books.Remove({1, 0}));
  EXPECT_FALSE(books.Remove({1, 0}));
  EXPECT_EQ(books.RemoveSlice(1).size(), 2u);
  EXPECT_EQ(books.used_bytes(), 0);
  EXPECT_FALSE(books.Contains({2, 0}));
}

TEST(HostResidencyTest, DefaultBudgetLeavesHeadroom) {
  EXPECT_GE(DefaultHostMemoryBytes(), int64_t{1} << 30);
}

}  // namespace
}  // namespace fluidfaas::runtime
