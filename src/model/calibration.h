// Calibration of the latency model against measured whole-model latencies (MIGProfiler's A100-80GB CSVs).
//
// ReadMeasurements loads every a100-80gb_*.csv it knows in a folder: the CV file (resnet50 and
// vision_transformer = vit-b16) and the NLP batch and sequence sweeps (bert-base). Evaluate prices each point with
// the model; Fit searches the three fitted parameters (launch cost, matmul and memory efficiency) to minimise the
// squared log error over the acceptance set.
//
// The acceptance set is the batch sweeps at batch 1..128 on 1g, 2g, 3g and 7g. The sequence sweep is reported
// beside it: above 128 tokens its latency stops growing with the sequence (77 ms at 256 and 82 ms at 512 on 7g,
// against 50 ms at 128), which no cost model of a 512-token BERT reproduces; the sweep's inputs were probably
// shorter than the requested length.
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"
#include "model/latency_model.h"

namespace fluidfaas::model {

// A bound on the modelled latency ratio of two slices for one model and batch: what makes the split between
// compute-bound and bandwidth-bound time identifiable, which whole-model latencies alone do not. A 4g.40gb and a
// 3g.40gb slice have the same memory bandwidth and L2 (4 of 8 memory slices) and 56 against 42 SMs, so their
// ratio is 0.75 for purely compute-bound work and 1.0 for purely bandwidth-bound work.
struct RatioConstraint {
  std::string model;
  std::string profile;       // numerator: "4g.40gb"
  std::string over_profile;  // denominator: "3g.40gb"
  int batch = 0;
  double lo = 0;
  double hi = 0;
};

// The held-out 4g/3g measurements (PyTorch, A100-80GB, one process per slice, batch 8 to 128) put ResNet-50's and
// ResNet-152's ratio at 0.82-0.89: one constraint per model and batch 8, 16, 32, 64, 128.
std::vector<RatioConstraint> DefaultRatioConstraints();

struct RatioCheck {
  RatioConstraint c;
  double modelled = 0;
};

struct Measurement {
  std::string file;     // the CSV it came from
  std::string model;    // zoo name
  std::string profile;  // "1g.10gb"
  int batch = 0;
  int seq_len = 0;  // 0 for CNNs
  double measured_ms = 0;
  bool acceptance = false;  // part of the acceptance set
};

struct CalibrationPoint {
  Measurement m;
  double modelled_ms = 0;
  double error = 0;  // |modelled - measured| / measured
};

struct CalibrationSummary {
  std::vector<CalibrationPoint> points;
  double median_error = 0;  // over the acceptance set
  double worst_error = 0;   // over the acceptance set
  size_t acceptance_points = 0;
  double seq_median_error = 0;  // over the sequence sweep
  double seq_worst_error = 0;
  std::vector<RatioCheck> ratios;  // the constraints Evaluate was given, with the model's ratios
};

// Reads the measurements in `dir`. NotFound when none of the known files is there.
Result<std::vector<Measurement>> ReadMeasurements(const std::string& dir);

Result<CalibrationSummary> Evaluate(const LatencyModel& model, const std::vector<Measurement>& data,
                                    const std::vector<RatioConstraint>& ratios = {});

// Pattern search in log space from `start` over the acceptance points of `data`, with `ratios` as penalties
// (squared log distance outside [lo, hi]); returns the best parameters found.
Result<LatencyModelParams> Fit(const std::vector<Measurement>& data, LatencyModelParams start = {},
                               const std::vector<RatioConstraint>& ratios = {});

// Out-of-sample errors: for each acceptance profile (then each model), fit on the acceptance points of the
// others and price the held-out ones. A held-out model's own ratio constraints are left out of its fit.
struct HeldOut {
  std::string kind;  // "profile" | "model"
  std::string name;  // "3g.40gb" | "resnet50"
  size_t points = 0;
  double median_error = 0;
  double worst_error = 0;
};
struct CrossValidation {
  std::vector<HeldOut> folds;
  double profile_median_error = 0;  // median over every point of the leave-one-profile-out folds
  double model_median_error = 0;    // the same for leave-one-model-out
};
Result<CrossValidation> CrossValidate(const std::vector<Measurement>& data, const std::vector<RatioConstraint>& ratios,
                                      LatencyModelParams start = {});

}  // namespace fluidfaas::model
