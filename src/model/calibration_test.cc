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
  const double before = Evaluate(LatencyModel(poor), data)->median_error;
  Result<LatencyModelParams> fitted = Fit(data, poor);
  ASSERT_TRUE(fitted.ok());
  const CalibrationSummary after = *Evaluate(LatencyModel(*fitted), data);
  EXPECT_GT(before, 0.2);
  EXPECT_LE(after.median_error, 0.10);
  EXPECT_LE(after.worst_error, 0.30);
}

TEST(CalibrationTest, MissingFolderIsNotFound) {
  EXPECT_EQ(ReadMeasurements("/nonexistent").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace fluidfaas::model
