#include "policy/pipeline_planner.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <map>
#include <optional>

#include "gpu/topology.h"
#include "model/zoo.h"

namespace fluidfaas::policy {
namespace {

using gpu::GetGpuType;
using gpu::GpuModel;

const gpu::GpuType& A100() {
  return GetGpuType(GpuModel::kA100_80GB);
}

SliceKind Kind(std::string_view profile) {
  return SliceKind{&A100(), A100().FindProfile(profile)};
}

std::vector<SliceKind> A100Kinds() {
  std::vector<SliceKind> kinds;
  for (const gpu::MigProfile& p : A100().profiles) kinds.push_back(SliceKind{&A100(), &p});
  return kinds;
}

FreeSlice Free(const std::string& id) {
  const gpu::SliceId sid = *gpu::SliceId::Parse(id);
  const SliceKind kind = Kind(sid.profile);
  return FreeSlice{id, sid.gpu, kind, kind.profile->memory_mib};
}

// Block times from a table: kind index x block.
class TableBlockTimes final : public model::BlockTimes {
 public:
  TableBlockTimes(std::vector<SliceKind> kinds, std::vector<std::vector<double>> ms)
      : kinds_(std::move(kinds)), ms_(std::move(ms)) {}
  double BlockMs(size_t index, const gpu::GpuType& g, const gpu::MigProfile& p, int) const override {
    for (size_t k = 0; k < kinds_.size(); ++k) {
      if (kinds_[k].gpu == &g && kinds_[k].profile == &p) return ms_[k][index];
    }
    return 1e9;
  }
  std::string Source(const gpu::GpuType&, const gpu::MigProfile&) const override { return "table"; }

 private:
  std::vector<SliceKind> kinds_;
  std::vector<std::vector<double>> ms_;
};

// Every plan, by brute force over ordered sequences of distinct concrete slices and cut points.
std::optional<Plan> BruteForce(const StageCostTable& costs, const TransferModel& transfer,
                               const std::vector<FreeSlice>& free, int max_stages, double slo) {
  const size_t n = costs.blocks();
  std::optional<Plan> best;
  std::vector<size_t> seq;
  std::vector<bool> used(free.size(), false);
  // For a slice sequence of length k, every way to cut n blocks into k non-empty ranges.
  const auto try_cuts = [&](auto&& self, size_t s, size_t first, std::vector<PlanStage>& stages) -> void {
    if (s == seq.size()) {
      if (first != n) return;
      Plan p = EvaluatePlan(costs, transfer, free, stages);
      for (const PlanStage& st : p.stages) {
        if (st.memory_mib > free[st.slice].free_mib) return;
      }
      if (p.latency_ms > slo) return;
      if (!best || PlanBetter(p, *best)) best = std::move(p);
      return;
    }
    const size_t stages_left = seq.size() - s;
    for (size_t last = first; last + stages_left <= n; ++last) {
      if (s + 1 == seq.size() && last != n - 1) continue;
      stages.push_back(PlanStage{seq[s], "", 0, first, last, 0, 0, 0});
      self(self, s + 1, last + 1, stages);
      stages.pop_back();
    }
  };
  const auto sequences = [&](auto&& self) -> void {
    if (!seq.empty()) {
      std::vector<PlanStage> stages;
      try_cuts(try_cuts, 0, 0, stages);
    }
    if (static_cast<int>(seq.size()) == max_stages) return;
    for (size_t i = 0; i < free.size(); ++i) {
      if (used[i]) continue;
      used[i] = true;
      seq.push_back(i);
      self(self);
      seq.pop_back();
      used[i] = false;
    }
  };
  sequences(sequences);
  return best;
}

void ExpectValid(const Plan& p, const std::vector<FreeSlice>& free, size_t blocks, double slo) {
  ASSERT_FALSE(p.stages.empty());
  size_t next = 0;
  std::vector<size_t> slices;
  for (const PlanStage& st : p.stages) {
    EXPECT_EQ(st.first_block, next);
    EXPECT_LE(st.first_block, st.last_block);
    next = st.last_block + 1;
    EXPECT_LE(st.memory_mib, free[st.slice].free_mib);
    EXPECT_EQ(std::count(slices.begin(), slices.end(), st.slice), 0);
    slices.push_back(st.slice);
  }
  EXPECT_EQ(next, blocks);
  EXPECT_LE(p.latency_ms, slo * (1 + 1e-9));
}

RC_GTEST_PROP(PipelinePlannerProperty, MatchesBruteForceAndIsValid, ()) {
  const std::vector<SliceKind> kinds = {Kind("1g.10gb"), Kind("2g.20gb"), Kind("3g.40gb"), Kind("4g.40gb"),
                                        Kind("7g.80gb")};
  // Up to 6 free slices of random kinds, GPUs and free memory.
  const size_t slices = *rc::gen::inRange<size_t>(1, 7);
  std::vector<FreeSlice> free;
  int64_t largest_mib = 0;
  for (size_t i = 0; i < slices; ++i) {
    const SliceKind kind = kinds[*rc::gen::inRange<size_t>(0, kinds.size())];
    const int64_t free_mib = kind.profile->memory_mib * *rc::gen::inRange(40, 101) / 100;
    largest_mib = std::max(largest_mib, free_mib);
    free.push_back(FreeSlice{"s" + std::to_string(i), *rc::gen::inRange(0, 3), kind, free_mib});
  }
  // Up to 12 blocks of uneven size, 0.3x to 3x the largest free slice in all: often too big for one slice.
  const size_t n = *rc::gen::inRange<size_t>(1, 13);
  const int64_t total_bytes = (largest_mib << 20) * *rc::gen::inRange(30, 301) / 100;
  model::FunctionSpec f;
  f.name = "random";
  f.dtype = model::DType::kFp16;
  for (size_t i = 0; i < n; ++i) {
    model::Block b;
    b.name = "b" + std::to_string(i);
    b.params = total_bytes / 2 / static_cast<int64_t>(n) * *rc::gen::inRange(50, 151) / 100;
    b.out_elems = *rc::gen::inRange<int64_t>(1, 50'000'000);
    b.peak_act_elems = b.out_elems + *rc::gen::inRange<int64_t>(0, 100'000'000);
    f.blocks.push_back(b);
  }
  std::vector<std::vector<double>> ms(kinds.size(), std::vector<double>(n));
  for (size_t b = 0; b < n; ++b) {
    const double base = *rc::gen::inRange(1, 1000) / 10.0;
    for (size_t k = 0; k < kinds.size(); ++k) {
      // Bigger slices are usually, not always, faster.
      ms[k][b] = base * *rc::gen::inRange(30, 130) / 100.0 / (1 + static_cast<double>(k));
    }
  }
  const TableBlockTimes times(kinds, ms);
  const model::LatencyModel memory;
  const StageCostTable costs = StageCostTable::Build(f, times, memory, 1, kinds);

  const int max_stages = *rc::gen::inRange(1, 5);
  const double slo = *rc::gen::inRange(5, 2000) * 1.0;
  PlannerOptions options;
  options.max_stages = max_stages;
  options.transfer.hop_fixed_ms = *rc::gen::inRange(0, 50) / 10.0;

  const Result<Plan> plan = PipelinePlanner(options).Best(costs, slo, free);
  const std::optional<Plan> brute = BruteForce(costs, options.transfer, free, max_stages, slo);
  RC_ASSERT(plan.ok() == brute.has_value());
  RC_TAG(plan.ok() ? (plan->stages.size() > 1 ? "pipeline" : "one stage") : "no plan");
  if (!plan.ok()) {
    RC_ASSERT(plan.status().code() == StatusCode::kResourceExhausted ||
              plan.status().code() == StatusCode::kDeadlineExceeded);
    return;
  }
  RC_ASSERT(!PlanBetter(*brute, *plan));
  RC_ASSERT(!PlanBetter(*plan, *brute));
  ExpectValid(*plan, free, n, slo);
  RC_ASSERT(static_cast<int>(plan->stages.size()) <= max_stages);
}

// Two blocks, two kinds, each block fastest on a different kind, and neither slice holds both blocks: the only
// plan within the SLO runs each block on its fast kind (4 + 4 ms). The SLO floor once took the fastest single kind
// for the whole rest (4 + 10 ms) as a lower bound and pruned that plan.
TEST(PlannerTest, AMixOfKindsWithinTheSloIsFoundWhenNoSingleKindIsFastestForEveryBlock) {
  const std::vector<SliceKind> kinds = {Kind("3g.40gb"), Kind("4g.40gb")};
  const TableBlockTimes times(kinds, {{4, 10}, {10, 4}});
  model::FunctionSpec f;
  f.name = "mixed";
  f.dtype = model::DType::kFp16;
  for (const char* name : {"b0", "b1"}) {
    model::Block b;
    b.name = name;
    b.params = int64_t{6} << 30;  // 12 GiB at FP16: one block per slice
    b.out_elems = 1;
    b.peak_act_elems = 1;
    f.blocks.push_back(b);
  }
  const model::LatencyModel memory;
  const StageCostTable costs = StageCostTable::Build(f, times, memory, 1, kinds);
  const std::vector<FreeSlice> free = {FreeSlice{"0:3g.40gb@0", 0, kinds[0], 20'000},
                                       FreeSlice{"0:4g.40gb@4", 0, kinds[1], 20'000}};
  PlannerOptions options;
  options.transfer.hop_fixed_ms = 0;
  const Result<Plan> plan = PipelinePlanner(options).Best(costs, 9, free);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ASSERT_EQ(plan->stages.size(), 2u);
  EXPECT_EQ(plan->stages[0].slice_id, "0:3g.40gb@0");
  EXPECT_EQ(plan->stages[1].slice_id, "0:4g.40gb@4");
  EXPECT_NEAR(plan->latency_ms, 8, 1e-6);
  EXPECT_NEAR(costs.MinSuffixMs(0), 8, 1e-6);
}

class PlannerScenarioTest : public testing::Test {
 protected:
  Result<Plan> PlanFor(const std::string& model, const std::vector<std::string>& free_ids, double slo_ms = 10'000,
                       int batch = 1, int max_stages = 4) {
    function_ = *model::BuildZooModel(model);
    times_ = std::make_unique<model::ModelledBlockTimes>(function_, latency_);
    costs_ = StageCostTable::Build(function_, *times_, latency_, batch, A100Kinds());
    free_.clear();
    for (const std::string& id : free_ids) free_.push_back(Free(id));
    return PipelinePlanner(PlannerOptions{.max_stages = max_stages}).Best(costs_, slo_ms, free_);
  }

  model::LatencyModel latency_;
  model::FunctionSpec function_;
  std::unique_ptr<model::ModelledBlockTimes> times_;
  StageCostTable costs_;
  std::vector<FreeSlice> free_;
};

TEST_F(PlannerScenarioTest, Llama13BOnA2gAndA1gIsATwoStagePipeline) {
  Result<Plan> plan = PlanFor("llama2-13b", {"0:2g.20gb@4", "0:1g.10gb@6"});
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ASSERT_EQ(plan->stages.size(), 2u);
  EXPECT_EQ(plan->gpus, 1);
  EXPECT_EQ(plan->stages[0].first_block, 0u);
  EXPECT_EQ(plan->stages[1].last_block, function_.blocks.size() - 1);
  ExpectValid(*plan, free_, function_.blocks.size(), 10'000);
  // The 2g stage carries about twice the layers of the 1g one.
  const size_t on_2g = plan->stages[0].slice_id == "0:2g.20gb@4" ? 0 : 1;
  const auto layers = [&](size_t s) { return plan->stages[s].last_block - plan->stages[s].first_block + 1; };
  EXPECT_GT(layers(on_2g), layers(1 - on_2g));
}

TEST_F(PlannerScenarioTest, Llama13BWithAFree4gIsOneStage) {
  Result<Plan> plan = PlanFor("llama2-13b", {"0:4g.40gb@0", "0:2g.20gb@4", "0:1g.10gb@6"});
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ASSERT_EQ(plan->stages.size(), 1u);
  EXPECT_EQ(plan->stages[0].slice_id, "0:4g.40gb@0");
  EXPECT_DOUBLE_EQ(plan->cv, 0.0);
}

TEST_F(PlannerScenarioTest, ResNetNeverPipelinesWhenOneSliceServesIt) {
  for (const auto& free : std::vector<std::vector<std::string>>{{"0:4g.40gb@0", "0:2g.20gb@4", "0:1g.10gb@6"},
                                                                {"0:2g.20gb@4", "0:1g.10gb@6"},
                                                                {"0:1g.10gb@6", "1:1g.10gb@6"}}) {
    Result<Plan> plan = PlanFor("resnet50", free, 500, 8);
    ASSERT_TRUE(plan.ok()) << plan.status().ToString();
    EXPECT_EQ(plan->stages.size(), 1u);
  }
}

TEST_F(PlannerScenarioTest, RemovingASliceChangesThePlan) {
  Result<Plan> with_4g = PlanFor("llama2-13b", {"0:4g.40gb@0", "0:2g.20gb@4", "0:1g.10gb@6", "1:1g.10gb@6"});
  ASSERT_TRUE(with_4g.ok());
  EXPECT_EQ(with_4g->stages.size(), 1u);
  Result<Plan> without = PlanFor("llama2-13b", {"0:2g.20gb@4", "0:1g.10gb@6", "1:1g.10gb@6"});
  ASSERT_TRUE(without.ok());
  EXPECT_GE(without->stages.size(), 2u);
  Result<Plan> only_1g = PlanFor("llama2-13b", {"0:1g.10gb@6"});
  EXPECT_EQ(only_1g.status().code(), StatusCode::kResourceExhausted);
}

TEST_F(PlannerScenarioTest, MoreStagesWhenTheyRaiseThroughput) {
  // No slice holds the model; with four free, a pipeline over more of them has a lower bottleneck.
  Result<Plan> plan = PlanFor("llama2-13b", {"1:2g.20gb@4", "2:1g.10gb@6", "0:2g.20gb@4", "0:1g.10gb@6"});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->stages.size(), 4u);
  Result<Plan> two = PlanFor("llama2-13b", {"1:2g.20gb@4", "2:1g.10gb@6", "0:2g.20gb@4", "0:1g.10gb@6"}, 10'000, 1, 2);
  ASSERT_TRUE(two.ok());
  EXPECT_LT(plan->bottleneck_ms, two->bottleneck_ms);
}

TEST_F(PlannerScenarioTest, SameGpuIsPreferredWhenEqual) {
  // At most two stages: the 2g with the 1g of its own GPU, not with the equal 1g of another.
  Result<Plan> plan = PlanFor("llama2-13b", {"1:1g.10gb@6", "0:2g.20gb@4", "0:1g.10gb@6"}, 10'000, 1, 2);
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan->stages.size(), 2u);
  EXPECT_EQ(plan->gpus, 1);
  EXPECT_EQ(plan->stages[0].gpu, 0);
  EXPECT_EQ(plan->stages[1].gpu, 0);
}

TEST_F(PlannerScenarioTest, ReasonsWhenThereIsNoPlan) {
  EXPECT_EQ(PlanFor("resnet50", {}).status().code(), StatusCode::kFailedPrecondition);
  Result<Plan> slo = PlanFor("llama2-13b", {"0:2g.20gb@4", "0:1g.10gb@6"}, /*slo_ms=*/10);
  EXPECT_EQ(slo.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(slo.status().message().find("SLO unreachable"), std::string::npos);
}

TEST(PlannerTest, TransferModelDefaults) {
  TransferModel t;
  // 25 GB/s each way: 1 MB crosses twice in 80 us, plus the fixed 30 us.
  EXPECT_NEAR(t.HopMs(1'000'000), 0.03 + 0.08, 1e-12);
}

}  // namespace
}  // namespace fluidfaas::policy
