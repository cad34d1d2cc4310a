#include "model/calibration.h"

#include <gtest/gtest.h>

#include <cmath>

namespace fluidfaas::model {
namespace {

constexpr const char* kData = FLUIDFAAS_CALIBRATION_DIR;

TEST(CalibrationTest, DefaultModelMeetsTheAccuracyTargets) {
  Result<std::vector<Measurement>> data = ReadMeasurements(kData);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  Result<CalibrationSummary> s = Evaluate(LatencyModel(), *data);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  // resnet50, vit-b16 and bert-base; 1g, 2g, 3g, 7g; batch 1..128.
  EXPECT_EQ(s->acceptance_points, 3u * 4u * 8u);
  EXPECT_LE(s->median_error, 0.10);
  EXPECT_LE(s->worst_error, 0.30);
}

TEST(CalibrationTest, ReadsEveryFileAndMarksTheSequenceSweep) {
  std::vector<Measurement> data = *ReadMeasurements(kData);
  size_t seq = 0;
  for (const Measurement& m : data) {
    if (m.file == "a100-80gb_mig_nlp_infer_seq.csv") {
      ++seq;
      EXPECT_FALSE(m.acceptance);
      EXPECT_EQ(m.batch, 32);
    }
    if (m.model == "bert-base" && m.file == "a100-80gb_mig_nlp_infer_batch.csv") {
      EXPECT_EQ(m.seq_len, 64);
    }
    if (m.batch > 128) {
      EXPECT_FALSE(m.acceptance);
    }
  }
  EXPECT_EQ(seq, 20u);
}

TEST(CalibrationTest, FitRecoversFromAPoorStart) {
  // Every fitted parameter off by about 2x.
  std::vector<Measurement> data = *ReadMeasurements(kData);
  LatencyModelParams poor;
  poor.launch_us = 15;
  poor.kernel_overhead_us = 30;
  poor.fp32_matmul_efficiency = 0.5;
  poor.tf32_conv_efficiency = 0.5;
  poor.memory_efficiency = 0.9;
  poor.sm_bandwidth_gbs = 30;
  const double before = Evaluate(LatencyModel(poor), data)->median_error;
  Result<LatencyModelParams> fitted = Fit(data, poor, DefaultRatioConstraints());
  ASSERT_TRUE(fitted.ok());
  const CalibrationSummary after = *Evaluate(LatencyModel(*fitted), data);
  EXPECT_GT(before, 0.2);
  EXPECT_LE(after.median_error, 0.10);
  EXPECT_LE(after.worst_error, 0.30);
}

TEST(CalibrationTest, FourGOverThreeGIsWithinTheHeldOutRangeForCnns) {
  // The held-out measurement puts ResNet-50's and ResNet-152's 4g/3g ratio at 0.82-0.89 (batch 8..128); the
  // target is 0.80-0.92. Without the per-SM bandwidth cap and the constraints the model gave 0.97-0.995.
  std::vector<Measurement> data = *ReadMeasurements(kData);
  const CalibrationSummary s = *Evaluate(LatencyModel(), data, DefaultRatioConstraints());
  ASSERT_EQ(s.ratios.size(), 10u);
  for (const RatioCheck& r : s.ratios) {
    EXPECT_GE(r.modelled, 0.80) << r.c.model << " batch " << r.c.batch;
    EXPECT_LE(r.modelled, 0.92) << r.c.model << " batch " << r.c.batch;
  }
}

TEST(CalibrationTest, CrossValidatedErrorsMeetTheOutOfSampleTargets) {
  // Each fold refits on the other profiles (models) and prices the held-out points: these are errors on data the
  // parameters never saw.
  std::vector<Measurement> data = *ReadMeasurements(kData);
  Result<CrossValidation> cv = CrossValidate(data, DefaultRatioConstraints());
  ASSERT_TRUE(cv.ok()) << cv.status().ToString();
  ASSERT_EQ(cv->folds.size(), 4u + 3u);
  EXPECT_LE(cv->profile_median_error, 0.15);
  for (const HeldOut& f : cv->folds) {
    EXPECT_EQ(f.points, f.kind == "profile" ? 24u : 32u) << f.name;
    // Measured here: leave-one-profile-out medians 2.9-4.3%, worst 29.4% (1g); leave-one-model-out medians
    // 6.0-9.7%, worst 36.7% (resnet50). The bounds leave room for a refit, not for a model that stops generalising.
    EXPECT_LE(f.median_error, f.kind == "profile" ? 0.08 : 0.15) << f.kind << " " << f.name;
    EXPECT_LE(f.worst_error, 0.50) << f.kind << " " << f.name;
  }
  EXPECT_LE(cv->model_median_error, 0.12);
}

TEST(CalibrationTest, MissingFolderIsNotFound) {
  EXPECT_EQ(ReadMeasurements("/nonexistent").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace fluidfaas::model
