#include "sim/generation.h"

#include <gtest/gtest.h>

#include "model/generation.h"
#include "model/load_cost.h"
#include "sim/experiment.h"

namespace fluidfaas::sim {
namespace {

GenScenario Preset(const char* name, double load) {
  Result<GenScenario> s = GenPreset(name, load);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return std::move(s).value();
}

GenResult Simulate(const GenScenario& s, const std::vector<GenArrival>& arrivals, double duration, GenOptions o = {}) {
  Result<GenResult> r = SimulateGeneration(s, arrivals, duration, o);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return std::move(r).value();
}

std::string Refusals(const GenFunctionResult& f) {
  std::string out;
  for (const auto& [reason, n] : f.refused) out += reason + "=" + std::to_string(n) + " ";
  return out;
}

const GenFunctionResult& Of(const GenResult& r, const std::string& name) {
  for (const GenFunctionResult& f : r.functions) {
    if (f.name == name) return f;
  }
  throw std::runtime_error("no function " + name);
}

TEST(GenerationSimTest, OnlyAPipelineServesLlama13BOnFragmentedSlices) {
  const GenScenario s = Preset("gen-fragmented", 0.4);
  const std::vector<GenArrival> arrivals = GenArrivals(s, 600, 1);
  const GenResult fluid = Simulate(s, arrivals, 600, {.node = {.policy = GenPolicy::kFluidFaaS}});
  const GenResult exclusive = Simulate(s, arrivals, 600, {.node = {.policy = GenPolicy::kExclusive}});
  const GenFunctionResult& f13 = Of(fluid, "llama2-13b");
  const GenFunctionResult& e13 = Of(exclusive, "llama2-13b");
  ASSERT_GT(f13.requests, 0);
  EXPECT_EQ(f13.completed, f13.requests);
  EXPECT_GT(f13.pipelined, 0);
  EXPECT_EQ(f13.max_stages, 2);  // two 2g.20gb slices, not every free slice
  EXPECT_EQ(e13.refused.at("fits_no_slice"), e13.requests);
  EXPECT_EQ(e13.completed, 0);
  // At light load the other functions lose little to the pipeline's two slices: FluidFaaS meets more in all, and
  // more per function.
  EXPECT_GT(fluid.attainment(), exclusive.attainment() + 0.05);
  EXPECT_GT(fluid.function_mean_attainment(), exclusive.function_mean_attainment() + 0.15);
  double sum = 0;
  for (const GenFunctionResult& f : exclusive.functions) sum += f.attainment();
  EXPECT_DOUBLE_EQ(exclusive.function_mean_attainment(), sum / 3);
  EXPECT_GT(f13.met, 0);
}

TEST(GenerationSimTest, EverySequenceEndsExactlyOnceAndTheSameSeedGivesTheSameRun) {
  const GenScenario s = Preset("gen-mixed", 1.6);
  const std::vector<GenArrival> arrivals = GenArrivals(s, 300, 7);
  for (const GenOptions& o :
       {GenOptions{.node = {.policy = GenPolicy::kFluidFaaS}}, GenOptions{.node = {.policy = GenPolicy::kExclusive}},
        GenOptions{.node = {.policy = GenPolicy::kFluidFaaS, .prefill_chunk = 512}}}) {
    const GenResult a = Simulate(s, arrivals, 300, o);
    const GenResult b = Simulate(s, arrivals, 300, o);
    EXPECT_EQ(a.requests, static_cast<int64_t>(arrivals.size()));
    for (const GenFunctionResult& f : a.functions) {
      int64_t refused = 0;
      for (const auto& [reason, n] : f.refused) refused += n;
      EXPECT_EQ(f.completed + refused, f.requests) << f.name;
      EXPECT_LE(f.met, f.completed);
    }
    EXPECT_EQ(a.met, b.met);
    EXPECT_EQ(a.tokens, b.tokens);
    EXPECT_EQ(Of(a, "llama2-7b").ttft_p99_ms, Of(b, "llama2-7b").ttft_p99_ms);
  }
}

TEST(GenerationSimTest, ALoneSequenceWaitsForTheColdStartThenDecodesAtTheModelledStep) {
  GenScenario s = Preset("gen-fragmented", 1);
  s.functions.resize(2);  // llama2-13b, llama2-7b
  const std::vector<GenArrival> arrivals = {{.t_s = 1, .function = 1, .prompt = 512, .output = 101}};
  const GenResult r = Simulate(s, arrivals, 10);
  const GenFunctionResult& f = Of(r, "llama2-7b");
  ASSERT_EQ(f.completed, 1);
  const model::GenerationCosts c = *model::GenerationCosts::Build("llama2-7b");
  const gpu::GpuType& a100 = gpu::GetGpuType(gpu::GpuModel::kA100_80GB);
  const gpu::MigProfile& g2 = *a100.FindProfile("2g.20gb");
  const size_t last = c.spec().blocks.size() - 1;
  const double load_ms = ToSeconds(model::LoadCostModel().LoadTime(c.WeightBytes(0, last), false)) * 1e3;
  EXPECT_NEAR(f.ttft_p50_ms, load_ms + c.PrefillMs(0, last, a100, g2, 512, 1), 1.0);
  // 100 decode steps of one sequence, contexts 513..612.
  EXPECT_NEAR(f.tpot_p50_ms, c.DecodeStepMs(0, last, a100, g2, 1, 562), 0.5);
  EXPECT_EQ(f.instances, 1);
  EXPECT_EQ(f.placements.front().rfind("0:2g.20gb@", 0), 0u) << f.placements.front();  // the smallest that serves
}

TEST(GenerationSimTest, IdleInstancesGoAfterTheKeepAliveAndComeBackCold) {
  GenScenario s = Preset("gen-fragmented", 1);
  const std::vector<GenArrival> arrivals = {{.t_s = 1, .function = 2, .prompt = 100, .output = 20},
                                            {.t_s = 300, .function = 2, .prompt = 100, .output = 20}};
  EXPECT_EQ(Of(Simulate(s, arrivals, 400, {.node = {.keep_alive_s = 60}}), "tinyllama-1.1b").instances, 2);
  EXPECT_EQ(Of(Simulate(s, arrivals, 400, {.node = {.keep_alive_s = 1000}}), "tinyllama-1.1b").instances, 1);
}

TEST(GenerationSimTest, MoreLoadThanOneInstanceTakesScalesOut) {
  const GenScenario s = Preset("gen-mixed", 1.6);
  const GenResult r = Simulate(s, GenArrivals(s, 300, 3), 300);
  EXPECT_GT(Of(r, "llama2-7b").instances, 1);
  EXPECT_GT(Of(r, "tinyllama-1.1b").instances, 1);
}

TEST(LlmTraceTest, ReadsAzuresFormatAndDealsRowsByRate) {
  GenScenario s = Preset("gen-fragmented", 1);  // rates 0.25, 0.35, 0.8
  std::string text = "TIMESTAMP,ContextTokens,GeneratedTokens\n";
  for (int i = 0; i < 140; ++i) {
    text += "2023-11-16 18:" + std::to_string(15 + i / 60) + ":" + (i % 60 < 10 ? "0" : "") + std::to_string(i % 60) +
            ".5000000,374,44\n";
  }
  Result<TraceArrivals> t = ParseLlmTrace(text, "trace.csv", s, 1e9);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  ASSERT_EQ(t->arrivals.size(), 140u);
  EXPECT_DOUBLE_EQ(t->arrivals[0].t_s, 0);
  EXPECT_NEAR(t->arrivals[61].t_s, 61, 1e-6);  // across the minute
  EXPECT_EQ(t->clipped, 0);
  std::vector<int> per(3, 0);
  for (const GenArrival& a : t->arrivals) {
    ++per[static_cast<size_t>(a.function)];
    EXPECT_EQ(a.prompt, 374);
    EXPECT_EQ(a.output, 44);
  }
  EXPECT_EQ(per[0], 25);  // 140 x 0.25 / 1.4
  EXPECT_EQ(per[1], 35);
  EXPECT_EQ(per[2], 80);
  // The duration cuts it; plain seconds work too.
  Result<TraceArrivals> cut = ParseLlmTrace(text, "trace.csv", s, 30);
  ASSERT_TRUE(cut.ok());
  EXPECT_EQ(cut->arrivals.size(), 30u);
  Result<TraceArrivals> plain =
      ParseLlmTrace("TIMESTAMP,ContextTokens,GeneratedTokens\n5,10,10\n7.5,10,10\n", "p", s, 100);
  ASSERT_TRUE(plain.ok());
  EXPECT_DOUBLE_EQ(plain->arrivals[1].t_s, 2.5);
}

TEST(LlmTraceTest, CutsLengthsToTheModelAndRefusesBadRows) {
  const GenScenario s = Preset("gen-fragmented", 1);
  const std::string head = "TIMESTAMP,ContextTokens,GeneratedTokens\n";
  // tinyllama-1.1b (2,048 positions) gets every row when it alone has a rate.
  GenScenario tiny = s;
  tiny.functions[0].rate_per_s = 0;
  tiny.functions[1].rate_per_s = 0;
  Result<TraceArrivals> t = ParseLlmTrace(head + "1,3000,100\n2,0,0\n", "t", tiny, 100);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  ASSERT_EQ(t->arrivals.size(), 2u);
  EXPECT_EQ(t->arrivals[0].function, 2);
  EXPECT_EQ(t->arrivals[0].prompt + t->arrivals[0].output, 2048);
  EXPECT_EQ(t->arrivals[1].prompt, 1);
  EXPECT_EQ(t->arrivals[1].output, 1);
  EXPECT_EQ(t->clipped, 2);
  for (const char* bad : {"yesterday,1,1\n", "2023-13-01 00:00:00,1,1\n", "1,-5,1\n", "1,x,1\n", "5,1,1\n4,1,1\n"}) {
    Result<TraceArrivals> r = ParseLlmTrace(head + bad, "bad.csv", s, 100);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("bad.csv:"), std::string::npos) << r.status().message();
  }
  EXPECT_FALSE(ParseLlmTrace("TIME,ContextTokens\n1,1\n", "nohead.csv", s, 100).ok());
  EXPECT_FALSE(ReadLlmTrace("/nonexistent/trace.csv", s, 100).ok());
}

TEST(GenerationSimTest, APipelineMigratesBackToASliceThatFreesAndDrains) {
  // One A100 as 3g.40gb + 2g.20gb x2, two deployments of llama2-13b. "b" takes the 3g first; "a" then gets a
  // pipeline over the two 2g slices. When "b" has idled past its keep-alive, the 3g frees while "a" still generates
  // a long sequence: "a" starts a single-slice instance on the 3g and its pipeline drains.
  GenScenario s;
  s.name = "migration";
  s.slices = *LayoutSlices({"3g.40gb+2g.20gb+2g.20gb"});
  for (const char* name : {"a", "b"}) {
    s.functions.push_back(GenFunction{.name = name,
                                      .model = "llama2-13b",
                                      .prompt = {100, 200},
                                      .output = {10, 1500},
                                      .ttft_slo_ms = 60000,
                                      .tpot_slo_ms = 1000});
  }
  const std::vector<GenArrival> arrivals = {{.t_s = 0, .function = 1, .prompt = 100, .output = 10},
                                            {.t_s = 1, .function = 0, .prompt = 100, .output = 1500},
                                            {.t_s = 200, .function = 0, .prompt = 100, .output = 10}};
  const GenResult r = Simulate(s, arrivals, 300, {.node = {.keep_alive_s = 5}});
  const GenFunctionResult& a = Of(r, "a");
  ASSERT_EQ(a.completed, 2) << Refusals(a);
  EXPECT_EQ(a.migrations, 1);
  ASSERT_GE(a.placements.size(), 2u);  // and a third, cold, at 200 s: the 3g instance idled past its keep-alive
  EXPECT_NE(a.placements[0].find('+'), std::string::npos) << a.placements[0];  // the pipeline
  EXPECT_EQ(a.placements[1].rfind("0:3g.40gb@", 0), 0u) << a.placements[1];    // then the 3g alone
  // Without migration the pipeline keeps serving "a".
  const GenResult kept = Simulate(s, arrivals, 300, {.node = {.keep_alive_s = 5, .migrate_back = false}});
  EXPECT_EQ(Of(kept, "a").migrations, 0);
  EXPECT_EQ(Of(kept, "a").instances, 1);
  // The exclusive policy has no pipeline: "a" waits for the 3g.
  const GenResult exclusive =
      Simulate(s, arrivals, 300, {.node = {.policy = GenPolicy::kExclusive, .keep_alive_s = 5}});
  EXPECT_EQ(Of(exclusive, "a").pipelined, 0);
  EXPECT_EQ(Of(exclusive, "a").completed, 2);
}

TEST(GenerationSimTest, RefusesWhatItCannotSimulate) {
  GenScenario s = Preset("gen-fragmented", 1);
  EXPECT_FALSE(SimulateGeneration(s, {{.t_s = 1, .function = 9, .prompt = 10, .output = 10}}, 10, {}).ok());
  EXPECT_FALSE(SimulateGeneration(s, {}, 0, {}).ok());
  s.functions[0].model = "bert-base";
  Result<GenResult> bert = SimulateGeneration(s, {}, 10, {});
  ASSERT_FALSE(bert.ok());
  EXPECT_NE(bert.status().message().find("does not generate"), std::string::npos);
  EXPECT_FALSE(GenPreset("gen-nope").ok());
  EXPECT_FALSE(GenPreset("gen-fragmented", -1).ok());
  EXPECT_FALSE(ParseGenPolicy("esg").ok());
}

}  // namespace
}  // namespace fluidfaas::sim
