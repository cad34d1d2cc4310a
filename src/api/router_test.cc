#include "api/router.h"

#include <gtest/gtest.h>

namespace fluidfaas::api {
namespace {

// Routes a request and returns the answer it got (the responder's exchange is not needed: a capturing handler).
struct Captured {
  std::string route;
  RouteParams params;
};

TEST(PathSegmentsTest, DecodesPercentEscapesAndIgnoresTheQuery) {
  auto s = PathSegments("/v2/models/my%2Dmodel/infer?x=1");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(*s, (std::vector<std::string>{"v2", "models", "my-model", "infer"}));
  auto invalid_utf8 = PathSegments("/v2/models/%FF");
  ASSERT_TRUE(invalid_utf8.ok());
  EXPECT_EQ((*invalid_utf8)[2], "\xff");
  EXPECT_FALSE(PathSegments("/v2/models/%G1").ok());
  EXPECT_FALSE(PathSegments("/v2/models/%F").ok());
  EXPECT_FALSE(PathSegments("http://host/v2").ok());
  EXPECT_FALSE(PathSegments("").ok());
}

class RouterTest : public ::testing::Test {
 protected:
  RouterTest() {
    for (const char* pattern : {"/v2/models/{}", "/v2/models/{}/versions/{}", "/v2/models/{}/infer"}) {
      router_.Add("GET", pattern, [this, pattern](HttpRequest&&, const RouteParams& p, Responder) {
        got_ = Captured{pattern, p};
      });
    }
    router_.Add(
        "POST", "/v2/models/{}/infer",
        [this](HttpRequest&&, const RouteParams& p, Responder) {
          got_ = Captured{"POST infer", p};
        },
        [](const RouteParams& p) { return p[0] == "small" ? size_t{10} : size_t{1000}; });
  }
  void Route(const std::string& method, const std::string& target) {
    got_.reset();
    HttpRequest req;
    req.method = method;
    req.target = target;
    router_.Handle(std::move(req), Responder());
  }
  Router router_;
  std::optional<Captured> got_;
};

TEST_F(RouterTest, MatchesByMethodAndSegments) {
  Route("GET", "/v2/models/bert");
  ASSERT_TRUE(got_);
  EXPECT_EQ(got_->route, "/v2/models/{}");
  EXPECT_EQ(got_->params, RouteParams{"bert"});
  Route("GET", "/v2/models/bert/versions/1");
  ASSERT_TRUE(got_);
  EXPECT_EQ(got_->params, (RouteParams{"bert", "1"}));
  Route("POST", "/v2/models/a%20b/infer");
  ASSERT_TRUE(got_);
  EXPECT_EQ(got_->route, "POST infer");
  EXPECT_EQ(got_->params, RouteParams{"a b"});
}

TEST_F(RouterTest, NoMatchAnOtherMethodOrAnEmptySegmentReachesNoHandler) {
  Route("DELETE", "/v2/models/bert/infer");  // 405 (answered by the router)
  EXPECT_FALSE(got_);
  Route("GET", "/v2/models//infer");  // an empty parameter
  EXPECT_FALSE(got_);
  Route("GET", "/v3");
  EXPECT_FALSE(got_);
}

TEST_F(RouterTest, ARouteBoundsItsOwnBodiesAndTheRestGetTheFallback) {
  EXPECT_EQ(router_.BodyLimit("POST", "/v2/models/small/infer", 7), 10u);
  EXPECT_EQ(router_.BodyLimit("POST", "/v2/models/big/infer?x=1", 7), 1000u);
  EXPECT_EQ(router_.BodyLimit("GET", "/v2/models/big/infer", 7), 7u);  // a route without a limit of its own
  EXPECT_EQ(router_.BodyLimit("POST", "/nowhere", 7), 7u);
  EXPECT_EQ(router_.BodyLimit("POST", "/v2/models/%ZZ/infer", 7), 7u);
}

}  // namespace
}  // namespace fluidfaas::api
