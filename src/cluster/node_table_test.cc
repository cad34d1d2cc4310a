#include "cluster/node_table.h"

#include <gtest/gtest.h>

namespace fluidfaas::cluster {
namespace {

NodeReport Report(const std::string& node, int hot, uint64_t seq = 1) {
  NodeReport r;
  r.node = node;
  r.advertise = "127.0.0.1:" + std::to_string(8000 + node.back());
  r.seq = seq;
  r.slices = {ReportedSlice{"0:1g.10gb@6", "1g.10gb", "a100-80gb", 9856}};
  r.functions = {ReportedFunction{"bert", "bert-base", 31.8, hot, 3.0, 0}};
  return r;
}

TimePoint At(int ms) {
  return TimePoint{} + Millis(ms);
}

TEST(NodeTableTest, RoutesToTheNodeWithAHotInstanceAndAgesSilentNodesItself) {
  NodeTable t(policy::Routing::kWarmFirst, Seconds(2));
  EXPECT_FALSE(t.Route("bert", 30, 1, At(0)).has_value());  // nothing known
  t.Apply(Report("a", 0), At(0));
  t.Apply(Report("b", 1), At(0));
  ASSERT_TRUE(t.Route("bert", 30, 1, At(100)).has_value());
  EXPECT_EQ(t.Route("bert", 30, 1, At(100))->node, "b");
  EXPECT_EQ(t.Route("bert", 30, 1, At(100))->advertise, Report("b", 1).advertise);
  EXPECT_FALSE(t.Route("unknown", 30, 1, At(100)).has_value());
  EXPECT_DOUBLE_EQ(t.SloMs("bert"), 31.8);

  // b falls silent; a keeps reporting: after the silence, b is unhealthy and a takes the requests.
  t.Apply(Report("a", 0, 2), At(1500));
  t.Apply(Report("a", 0, 3), At(2500));
  EXPECT_FALSE(t.Healthy("b", At(2500)));
  EXPECT_TRUE(t.Healthy("a", At(2500)));
  EXPECT_EQ(t.healthy_nodes(At(2500)), 1u);
  EXPECT_EQ(t.Route("bert", 30, 1, At(2500))->node, "a");
  // b comes back.
  t.Apply(Report("b", 1, 9), At(2600));
  EXPECT_EQ(t.Route("bert", 30, 1, At(2600))->node, "b");
}

TEST(NodeTableTest, ACallSentIsChargedToItsNodeUntilTheNextReport) {
  NodeTable t(policy::Routing::kWarmFirst, Seconds(2));
  t.Apply(Report("a", 1), At(0));  // one instance each, both finishing a new call in 3 ms
  t.Apply(Report("b", 1), At(0));
  const std::string first = t.Route("bert", 30, 1, At(1))->node;
  EXPECT_EQ(t.Route("bert", 30, 2, At(1))->node, first);  // routing alone changes nothing
  // A send adds 2% of bert's 31.8 ms SLO to that node's finish: the next call goes to the other node, and so on.
  t.Sent(first, "bert");
  const std::string second = t.Route("bert", 30, 3, At(1))->node;
  EXPECT_NE(second, first);
  t.Sent(second, "bert");
  EXPECT_EQ(t.Route("bert", 30, 4, At(1))->node, first);
  // A node's new report replaces the charges against it.
  t.Sent(first, "bert");
  t.Sent(first, "bert");
  EXPECT_EQ(t.Route("bert", 30, 5, At(1))->node, second);
  t.Apply(Report(first, 1, 2), At(2));
  EXPECT_EQ(t.Route("bert", 30, 6, At(3))->node, first);
}

TEST(NodeTableTest, AnUnreachableNodeWaitsForItsNextReportAndTriedNodesAreAvoided) {
  NodeTable t;
  t.Apply(Report("a", 0), At(0));
  t.Apply(Report("b", 1), At(0));
  t.MarkUnreachable("b");
  EXPECT_EQ(t.Route("bert", 30, 1, At(10))->node, "a");
  t.Apply(Report("b", 1, 2), At(20));
  EXPECT_EQ(t.Route("bert", 30, 1, At(30))->node, "b");
  EXPECT_EQ(t.Route("bert", 30, 1, At(30), {"b"})->node, "a");
  EXPECT_FALSE(t.Route("bert", 30, 1, At(30), {"a", "b"}).has_value());
  t.Remove("b");
  EXPECT_EQ(t.Route("bert", 30, 1, At(40))->node, "a");
}

TEST(NodeTableTest, ALateOlderReportIsIgnoredAndARestartedNodeIsTakenAtOnce) {
  NodeTable t;
  t.Apply(Report("a", 1, 5), At(0));
  t.Apply(Report("a", 0, 4), At(10));  // delivered late
  EXPECT_EQ(t.Json(At(10))["nodes"][0]["seq"], 5);
  t.Apply(Report("a", 0, 1), At(20));  // restarted: its sequence begins again
  EXPECT_EQ(t.Json(At(20))["nodes"][0]["seq"], 1);
}

TEST(NodeTableTest, OnlyNodesThatServeTheFunctionAreCandidates) {
  NodeTable t;
  NodeReport other = Report("a", 0);
  other.functions = {ReportedFunction{"resnet", "resnet50", 20, 0, 0, 0}};
  t.Apply(other, At(0));
  t.Apply(Report("b", 0), At(0));
  for (uint64_t r = 0; r < 10; ++r) EXPECT_EQ(t.Route("bert", 30, r, At(1))->node, "b");
  EXPECT_EQ(t.Route("resnet", 30, 1, At(1))->node, "a");
}

TEST(NodeTableTest, TheClusterJsonShowsEachNodesHealthAndFunctions) {
  NodeTable t(policy::Routing::kHashHome, Seconds(1));
  NodeReport a = Report("a", 1);
  a.host_free_mib = 1024;
  a.functions[0].rate_per_s = 3.5;
  a.functions[0].instances = {ReportedInstance{9, "time_sharing", {"0:1g.10gb@6"}, 4}};
  t.Apply(a, At(0));
  t.Sent("a", "bert");
  const nlohmann::json j = t.Json(At(1500));
  EXPECT_EQ(j["routing"], "hash-home");
  ASSERT_EQ(j["nodes"].size(), 1u);
  EXPECT_EQ(j["nodes"][0]["healthy"], false);
  EXPECT_EQ(j["nodes"][0]["outstanding"], 1);
  EXPECT_EQ(j["nodes"][0]["functions"][0]["name"], "bert");
  EXPECT_DOUBLE_EQ(j["nodes"][0]["report_age_ms"].get<double>(), 1500);
  EXPECT_EQ(j["nodes"][0]["host_free_mib"], 1024);
  const nlohmann::json& f = j["nodes"][0]["functions"][0];
  EXPECT_EQ(f["rate_per_s"], 3.5);
  ASSERT_EQ(f["instances"].size(), 1u);
  EXPECT_EQ(f["instances"][0]["state"], "time_sharing");
  EXPECT_EQ(f["instances"][0]["slices"][0], "0:1g.10gb@6");
  EXPECT_EQ(f["instances"][0]["queued"], 4);
}

TEST(NodeTableTest, ANodeThatTurnsACallAwayIsPassedOverForItsFunctionUntilItsNextReport) {
  NodeTable t;
  NodeReport a = Report("a", 2);  // hot, every slice taken
  a.slices.clear();
  t.Apply(a, At(0));
  NodeReport b = Report("b", 0);  // cold, with a free 4g.40gb
  b.slices = {ReportedSlice{"0:4g.40gb@0", "4g.40gb", "a100-80gb", 40192}};
  t.Apply(b, At(0));
  EXPECT_EQ(t.Route("bert", 30, 1, At(1))->node, "a");
  t.MarkBusy("a", "bert");                              // a answered 429
  EXPECT_EQ(t.Route("bert", 30, 1, At(2))->node, "b");  // a cold start on b rather than a refusal on a
  a.seq = 2;
  t.Apply(a, At(3));
  EXPECT_EQ(t.Route("bert", 30, 1, At(4))->node, "a");
}

}  // namespace
}  // namespace fluidfaas::cluster
