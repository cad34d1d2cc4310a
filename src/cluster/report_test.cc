#include "cluster/report.h"

#include <gtest/gtest.h>

namespace fluidfaas::cluster {
namespace {

NodeReport Sample() {
  NodeReport r;
  r.node = "gpu-a";
  r.advertise = "127.0.0.1:8000";
  r.seq = 41;
  r.open = 3;
  r.host_free_mib = 491520;
  r.slices = {ReportedSlice{"0:4g.40gb@0", "4g.40gb", "a100-80gb", 40192}};
  ReportedFunction bert{"bert", "bert-base", 31.8, 1, 4.25, 0};
  bert.rate_per_s = 12.5;
  bert.instances = {ReportedInstance{7, "exclusive_hot", {"0:2g.20gb@4", "0:1g.10gb@6"}, 2}};
  r.functions = {bert, ReportedFunction{"mine", "", 100, 0, 0, 2}};
  return r;
}

TEST(NodeReportTest, ARoundTripKeepsEveryField) {
  const NodeReport a = Sample();
  const Result<NodeReport> b = ParseNodeReport(ToJsonText(a));
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->node, a.node);
  EXPECT_EQ(b->advertise, a.advertise);
  EXPECT_EQ(b->seq, a.seq);
  EXPECT_EQ(b->open, a.open);
  ASSERT_EQ(b->slices.size(), 1u);
  EXPECT_EQ(b->slices[0].free_mib, 40192);
  EXPECT_EQ(b->slices[0].gpu_model, "a100-80gb");
  ASSERT_EQ(b->functions.size(), 2u);
  EXPECT_EQ(b->functions[0].finish_ms, 4.25);
  EXPECT_EQ(b->functions[1].model, "");
  EXPECT_EQ(b->functions[1].warm, 2);
  EXPECT_EQ(b->host_free_mib, 491520);
  EXPECT_EQ(b->functions[0].rate_per_s, 12.5);
  ASSERT_EQ(b->functions[0].instances.size(), 1u);
  const ReportedInstance& i = b->functions[0].instances[0];
  EXPECT_EQ(i.id, 7u);
  EXPECT_EQ(i.state, "exclusive_hot");
  EXPECT_EQ(i.slices, (std::vector<std::string>{"0:2g.20gb@4", "0:1g.10gb@6"}));
  EXPECT_EQ(i.queued, 2);
  EXPECT_TRUE(b->functions[1].instances.empty());
}

TEST(NodeReportTest, AnOlderNodesReportWithoutTheNewerFieldsIsRead) {
  const Result<NodeReport> r = ParseNodeReport(
      R"({"node":"old","advertise":"127.0.0.1:1","seq":1,"interval_ms":500,"open":0,"slices":[],)"
      R"("functions":[{"name":"bert","model":"bert-base","slo_ms":30,"hot":0,"finish_ms":0,"warm":1}]})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->host_free_mib, 0);
  EXPECT_EQ(r->functions[0].rate_per_s, 0);
  EXPECT_TRUE(r->functions[0].instances.empty());
}

TEST(NodeReportTest, AReportFromTheNetworkIsCheckedLikeAnyInput) {
  const std::string good = ToJsonText(Sample());
  const auto with = [&](const std::string& from, const std::string& to) {
    std::string t = good;
    const size_t at = t.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return t.replace(at, from.size(), to);
  };
  for (const std::string& bad :
       {std::string("not json"), std::string("[]"), with("\"gpu-a\"", "\"gpu a\""), with("\"gpu-a\"", "\"\""),
        with("\"open\":3", "\"open\":-1"), with("\"finish_ms\":4.25", "\"finish_ms\":\"soon\""),
        with("\"finish_ms\":4.25", "\"finish_ms\":1e300"), with("\"free_mib\":40192", "\"free_mib\":null"),
        with("\"slices\":[", "\"slices\":{\"x\":["), with("\"name\":\"bert\"", "\"name\":\"\""),
        with("\"rate_per_s\":12.5", "\"rate_per_s\":-1"), with("\"host_free_mib\":491520", "\"host_free_mib\":true"),
        with("\"queued\":2", "\"queued\":1e99"), with("\"slices\":[\"0:2g", "\"slices\":[7,\"0:2g"),
        with("\"instances\":[{", "\"instances\":{\"a\":{"), with("\"state\":\"exclusive_hot\"", "\"state\":3")}) {
    const Result<NodeReport> r = ParseNodeReport(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_NE(r.status().message().find("report"), std::string::npos) << r.status().message();
    }
  }
}

TEST(NodeReportTest, NodeNamesAreKeysAndLabels) {
  EXPECT_TRUE(CheckNodeName("gpu-a_01").ok());
  for (const char* bad : {"", "a.b", "a b", "a/b", "ä"}) EXPECT_FALSE(CheckNodeName(bad).ok()) << bad;
  EXPECT_FALSE(CheckNodeName(std::string(65, 'a')).ok());
}

}  // namespace
}  // namespace fluidfaas::cluster
