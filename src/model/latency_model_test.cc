#include "model/latency_model.h"

#include <gtest/gtest.h>

#include "model/zoo.h"

namespace fluidfaas::model {
namespace {

using gpu::GetGpuType;
using gpu::GpuModel;

const gpu::GpuType& A100() {
  return GetGpuType(GpuModel::kA100_80GB);
}
const gpu::MigProfile& P(std::string_view name) {
  return *A100().FindProfile(name);
}

TEST(LatencyModelTest, BiggerSlicesAreFasterAndBatchesCostMore) {
  LatencyModel model;
  for (const ZooEntry& e : ZooModels()) {
    const FunctionSpec f = *BuildZooModel(e.name);
    SCOPED_TRACE(f.name);
    for (int batch : {1, 8, 32}) {
      double previous = 1e30;
      for (const char* p : {"1g.10gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb"}) {
        const double ms = model.ModelMs(f, A100(), P(p), batch);
        EXPECT_GT(ms, 0);
        EXPECT_LE(ms, previous * 1.0001) << p << " batch " << batch;
        previous = ms;
      }
    }
    EXPECT_LT(model.ModelMs(f, A100(), P("2g.20gb"), 4), model.ModelMs(f, A100(), P("2g.20gb"), 16));
  }
}

TEST(LatencyModelTest, LargeBatchesScaleWithComputeSlices) {
  // At batch 128 a ResNet-50 is compute and bandwidth bound: a 7g slice is 5-8x a 1g (measured: 7.2x).
  LatencyModel model;
  const FunctionSpec f = *BuildZooModel("resnet50");
  const double ratio = model.ModelMs(f, A100(), P("1g.10gb"), 128) / model.ModelMs(f, A100(), P("7g.80gb"), 128);
  EXPECT_GT(ratio, 5.0);
  EXPECT_LT(ratio, 8.0);
}

TEST(LatencyModelTest, BatchOneIsLaunchBoundOnBigSlices) {
  // Every kernel costs at least one launch, so batch 1 on a 7g slice is close to kernels x launch cost.
  LatencyModel model;
  const FunctionSpec f = *BuildZooModel("resnet50");
  int kernels = 0;
  for (const Block& b : f.blocks) {
    for (const Op& op : b.ops) kernels += op.count;
  }
  const double floor_ms = kernels * model.params().launch_us / 1e3;
  const double ms = model.ModelMs(f, A100(), P("7g.80gb"), 1);
  EXPECT_GE(ms, floor_ms);
  EXPECT_LT(ms, floor_ms * 1.1);
}

TEST(LatencyModelTest, HopperIsFasterThanAmpere) {
  LatencyModel model;
  const FunctionSpec f = *BuildZooModel("llama2-7b");
  const gpu::GpuType& h100 = GetGpuType(GpuModel::kH100_80GB);
  const gpu::GpuType& h200 = GetGpuType(GpuModel::kH200_141GB);
  const double a = model.ModelMs(f, A100(), A100().FullProfile(), 1);
  const double h = model.ModelMs(f, h100, h100.FullProfile(), 1);
  const double hh = model.ModelMs(f, h200, h200.FullProfile(), 1);
  EXPECT_LT(h, a / 1.5);  // 3.2x the FP16 peak, 1.6x the bandwidth, the same launch costs
  EXPECT_LE(hh, h);
  EXPECT_TRUE(IsCalibrated(A100()));
  EXPECT_FALSE(IsCalibrated(h100));
}

TEST(LatencyModelTest, PrefillOfASevenBillionModelIsComputeBound) {
  // 512 tokens x 6.7e9 parameters x 2 FLOPs = 6.9 TFLOP: 44 ms at 55% of a 7g slice's FP16 peak, plus the
  // kernels' fixed costs and the bandwidth-bound passes.
  LatencyModel model;
  const FunctionSpec f = *BuildZooModel("llama2-7b");
  const double ms = model.ModelMs(f, A100(), P("7g.80gb"), 1);
  EXPECT_GT(ms, 44);
  EXPECT_LT(ms, 90);
  // Four prompts take over three times as long: the GPU is busy, not waiting for launches.
  EXPECT_GT(model.ModelMs(f, A100(), P("7g.80gb"), 4), 3 * ms);
}

TEST(MemoryModelTest, ReserveMatchesMeasuredMemoryInUse) {
  // MIGProfiler, batch 1: ResNet-50 uses 1448 MB on a 1g and 1806 MB on a 7g.
  LatencyModel model;
  const FunctionSpec f = *BuildZooModel("resnet50");
  const size_t last = f.blocks.size() - 1;
  EXPECT_NEAR(static_cast<double>(model.StageMib(f, 0, last, P("1g.10gb"), 1)), 1448, 1448 * 0.05);
  EXPECT_NEAR(static_cast<double>(model.StageMib(f, 0, last, P("7g.80gb"), 1)), 1806, 1806 * 0.05);
}

TEST(MemoryModelTest, Llama13BFitsNeitherSmallSliceButSplitsAcrossBoth) {
  LatencyModel model;
  const FunctionSpec f = *BuildZooModel("llama2-13b");
  const size_t last = f.blocks.size() - 1;
  EXPECT_FALSE(model.Fits(f, 0, last, P("1g.10gb"), 1));
  EXPECT_FALSE(model.Fits(f, 0, last, P("2g.20gb"), 1));
  EXPECT_TRUE(model.Fits(f, 0, last, P("4g.40gb"), 1));
  // Some cut puts the front on the 2g and the rest on the 1g.
  bool split = false;
  for (size_t cut = 0; cut < last; ++cut) {
    split = split || (model.Fits(f, 0, cut, P("2g.20gb"), 1) && model.Fits(f, cut + 1, last, P("1g.10gb"), 1));
  }
  EXPECT_TRUE(split);
}

TEST(MemoryModelTest, TiedWeightsCountOnceAndFollowTheirOwner) {
  LatencyModel model;
  const FunctionSpec f = *BuildZooModel("gpt2-xl");
  const size_t last = f.blocks.size() - 1;
  const int64_t tied = f.blocks.back().tied_params * 2;  // fp16
  // The head alone carries its copy of the embedding; with the embedding in the stage it is not counted twice.
  EXPECT_EQ(model.StageWeightBytes(f, last, last), f.blocks.back().ParamBytes(f.dtype) + tied);
  EXPECT_EQ(model.StageWeightBytes(f, 0, last), f.TotalParams() * 2);
  EXPECT_GT(model.StageBytes(f, 0, last, 1), model.StageWeightBytes(f, 0, last));
}

TEST(MemoryModelTest, ActivationsGrowWithBatch) {
  LatencyModel model;
  const FunctionSpec f = *BuildZooModel("vit-b16");
  EXPECT_LT(model.StageBytes(f, 0, 3, 1), model.StageBytes(f, 0, 3, 32));
}

}  // namespace
}  // namespace fluidfaas::model
