#include "common/status.h"

#include <gtest/gtest.h>

#include <memory>

#include "common/result.h"

namespace fluidfaas {
namespace {

TEST(StatusTest, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kOk);
  EXPECT_EQ(s.ToString(), "OK");
}

TEST(StatusTest, FactoriesSetCodeAndMessage) {
  EXPECT_EQ(Status::InvalidArgument("x").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Status::NotFound("x").code(), StatusCode::kNotFound);
  EXPECT_EQ(Status::ResourceExhausted("x").code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(Status::Unavailable("x").code(), StatusCode::kUnavailable);
  EXPECT_EQ(Status::Internal("boom").ToString(), "Internal: boom");
  EXPECT_FALSE(Status::IoError("disk").ok());
}

TEST(StatusTest, WithContextPrefixesErrorsAndKeepsOk) {
  EXPECT_EQ(Status::NotFound("no such file").WithContext("loading node").message(), "loading node: no such file");
  EXPECT_TRUE(Status::Ok().WithContext("anything").ok());
  EXPECT_EQ(Status::Ok().WithContext("anything").message(), "");
}

Status FailIf(bool fail) {
  return fail ? Status::FailedPrecondition("failed") : Status::Ok();
}

Status Chain(bool fail, int* reached) {
  FF_RETURN_IF_ERROR(FailIf(fail));
  *reached = 1;
  return Status::Ok();
}

TEST(StatusTest, ReturnIfErrorPropagatesOnlyFailures) {
  int reached = 0;
  EXPECT_EQ(Chain(true, &reached).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(reached, 0);
  EXPECT_TRUE(Chain(false, &reached).ok());
  EXPECT_EQ(reached, 1);
}

Result<int> Half(int x) {
  if (x % 2 != 0) return Status::InvalidArgument("odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  FF_ASSIGN_OR_RETURN(int half, Half(x));
  FF_ASSIGN_OR_RETURN(half, Half(half));  // assigns to an existing variable
  return half;
}

TEST(ResultTest, HoldsValueOrStatus) {
  Result<int> good = Half(8);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 4);
  EXPECT_TRUE(good.status().ok());
  Result<int> bad = Half(3);
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "odd");
  EXPECT_EQ(bad.value_or(-1), -1);
}

TEST(ResultTest, AssignOrReturnPropagates) {
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_EQ(Quarter(6).status().message(), "odd");  // 6 -> 3, which is odd
  EXPECT_EQ(Quarter(5).status().message(), "odd");
}

TEST(ResultTest, OkStatusWithoutValueBecomesInternalError) {
  Result<int> r{Status::Ok()};
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
}

TEST(ResultTest, MoveOnlyValues) {
  Result<std::unique_ptr<int>> r = std::make_unique<int>(7);
  ASSERT_TRUE(r.ok());
  std::unique_ptr<int> p = std::move(r).value();
  EXPECT_EQ(*p, 7);
}

TEST(ResultDeathTest, ValueOfFailureAborts) {
  Result<int> bad = Status::NotFound("gone");
  EXPECT_DEATH((void)bad.value(), "value\\(\\) of a failed Result: NotFound: gone");
}

}  // namespace
}  // namespace fluidfaas
