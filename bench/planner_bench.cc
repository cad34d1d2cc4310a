// Planning time of the pipeline planner (design point 1: it runs on the request path, so microseconds).
//
//   planner/resnet50_3_slices   resnet50 on a free 4g + 2g + 1g of one A100-80GB (a single slice serves it)
//   planner/200_blocks_24_slices a 200-block fp16 model (198 Llama-2-13B decoder layers, 120 GiB: no slice holds
//                                it) on 24 free slices, 8 x A100-80GB each 1g + 2g + 4g, up to 4 stages
//   cost_table/200_blocks        building that model's stage cost table (once per function and batch)
//
// Target: 200_blocks_24_slices median under 100 us on the 2-core development machine.
#include <benchmark/benchmark.h>

#include "gpu/topology.h"
#include "model/zoo.h"
#include "policy/pipeline_planner.h"

namespace fluidfaas::policy {
namespace {

const gpu::GpuType& A100() {
  return gpu::GetGpuType(gpu::GpuModel::kA100_80GB);
}

std::vector<SliceKind> Kinds() {
  std::vector<SliceKind> kinds;
  for (const gpu::MigProfile& p : A100().profiles) kinds.push_back(SliceKind{&A100(), &p});
  return kinds;
}

std::vector<FreeSlice> FreeSlices(int gpus) {
  std::vector<FreeSlice> free;
  for (int g = 0; g < gpus; ++g) {
    for (const auto& [profile, start] : {std::pair{"4g.40gb", 0}, {"2g.20gb", 4}, {"1g.10gb", 6}}) {
      const gpu::MigProfile* p = A100().FindProfile(profile);
      free.push_back(FreeSlice{gpu::SliceId{g, profile, start}.ToString(), g, SliceKind{&A100(), p}, p->memory_mib});
    }
  }
  return free;
}

model::FunctionSpec TwoHundredBlocks() {
  const model::FunctionSpec llama = *model::BuildZooModel("llama2-13b");
  model::FunctionSpec f = llama;
  f.name = "llama-200";
  f.blocks.clear();
  f.blocks.push_back(llama.blocks.front());
  for (int i = 0; i < 198; ++i) {
    model::Block layer = llama.blocks[1 + static_cast<size_t>(i) % 40];
    layer.name = "layers." + std::to_string(i);
    f.blocks.push_back(std::move(layer));
  }
  f.blocks.push_back(llama.blocks.back());
  return f;
}

void Plan(benchmark::State& state, const model::FunctionSpec& f, int gpus, double slo_ms, size_t want_stages) {
  const model::LatencyModel latency;
  const model::ModelledBlockTimes times(f, latency);
  const StageCostTable costs = StageCostTable::Build(f, times, latency, 1, Kinds());
  std::vector<FreeSlice> free = FreeSlices(gpus);
  const PipelinePlanner planner;
  size_t stages = 0;
  for (auto _ : state) {
    Result<fluidfaas::policy::Plan> plan = planner.Best(costs, slo_ms, free);
    stages = plan.ok() ? plan->stages.size() : 0;
    benchmark::DoNotOptimize(plan);
  }
  state.counters["stages"] = static_cast<double>(stages);
  if (stages != want_stages) state.SkipWithError("unexpected plan");
}

void BM_Resnet50ThreeSlices(benchmark::State& state) {
  static const model::FunctionSpec f = *model::BuildZooModel("resnet50");
  Plan(state, f, 1, 100, 1);
}
BENCHMARK(BM_Resnet50ThreeSlices)->Name("planner/resnet50_3_slices");

void BM_TwoHundredBlocks(benchmark::State& state) {
  static const model::FunctionSpec f = TwoHundredBlocks();
  Plan(state, f, 8, 60'000, 4);
}
BENCHMARK(BM_TwoHundredBlocks)->Name("planner/200_blocks_24_slices");

void BM_CostTable(benchmark::State& state) {
  static const model::FunctionSpec f = TwoHundredBlocks();
  const model::LatencyModel latency;
  const model::ModelledBlockTimes times(f, latency);
  const std::vector<SliceKind> kinds = Kinds();
  for (auto _ : state) benchmark::DoNotOptimize(StageCostTable::Build(f, times, latency, 1, kinds));
}
BENCHMARK(BM_CostTable)->Name("cost_table/200_blocks");

}  // namespace
}  // namespace fluidfaas::policy

BENCHMARK_MAIN();
