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
  r.slices = {ReportedSlice{"0:4g.40gb@0", "4g.40gb", "a100-80gb", 40192}};
  r.functions = {ReportedFunction{"bert", "bert-base", 31.8, 1, 4.25, 0}, ReportedFunction{"mine", "", 100, 0, 0, 2}};
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
        with("\"slices\":[", "\"slices\":{\"x\":["), with("\"name\":\"bert\"", "\"name\":\"\"")}) {
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
