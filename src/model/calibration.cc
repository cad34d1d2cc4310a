#include "model/calibration.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>

#include "common/csv.h"
#include "model/zoo.h"

namespace fluidfaas::model {
namespace {

constexpr const char* kCvFile = "a100-80gb_mig_cv_infer.csv";
constexpr const char* kNlpBatchFile = "a100-80gb_mig_nlp_infer_batch.csv";
constexpr const char* kNlpSeqFile = "a100-80gb_mig_nlp_infer_seq.csv";
constexpr int kMaxAcceptanceBatch = 128;
constexpr double kWorstWeight = 0.1;
constexpr double kRatioWeight = 50;

Result<std::string> ZooName(const std::string& measured_name) {
  if (measured_name == "resnet50") return std::string("resnet50");
  if (measured_name == "vision_transformer") return std::string("vit-b16");
  if (measured_name == "bert-base") return std::string("bert-base");
  return Status::InvalidArgument("no zoo model for measured model '" + measured_name + "'");
}

Status ReadFile(const std::string& path, bool sequence_sweep, std::vector<Measurement>& out) {
  FF_ASSIGN_OR_RETURN(CsvTable t, CsvTable::ReadFile(path));
  FF_ASSIGN_OR_RETURN(size_t model_col, t.RequireColumn("model_name"));
  FF_ASSIGN_OR_RETURN(size_t batch_col, t.RequireColumn("batch_size"));
  FF_ASSIGN_OR_RETURN(size_t latency_col, t.RequireColumn("latency"));
  FF_ASSIGN_OR_RETURN(size_t profile_col, t.RequireColumn("mig_profile"));
  const std::optional<size_t> seq_col = t.Column("seq_length");
  const std::string file = std::filesystem::path(path).filename().string();
  for (size_t r = 0; r < t.rows(); ++r) {
    Measurement m;
    m.file = file;
    FF_ASSIGN_OR_RETURN(m.model, ZooName(t.row(r)[model_col]));
    m.profile = t.row(r)[profile_col];
    FF_ASSIGN_OR_RETURN(double batch, t.Number(r, batch_col));
    m.batch = static_cast<int>(batch);
    if (seq_col) {
      FF_ASSIGN_OR_RETURN(double seq, t.Number(r, *seq_col));
      m.seq_len = static_cast<int>(seq);
    }
    FF_ASSIGN_OR_RETURN(m.measured_ms, t.Number(r, latency_col));
    m.acceptance = !sequence_sweep && m.batch <= kMaxAcceptanceBatch;
    out.push_back(std::move(m));
  }
  return Status::Ok();
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Models built once per (name, sequence length).
class ModelCache {
 public:
  Result<const FunctionSpec*> Get(const std::string& name, int seq) {
    const auto key = std::make_pair(name, seq);
    auto it = cache_.find(key);
    if (it == cache_.end()) {
      FF_ASSIGN_OR_RETURN(FunctionSpec f, BuildZooModel(name, ZooOptions{.seq_len = seq}));
      it = cache_.emplace(key, std::move(f)).first;
    }
    return &it->second;
  }

 private:
  std::map<std::pair<std::string, int>, FunctionSpec> cache_;
};

}  // namespace

Result<std::vector<Measurement>> ReadMeasurements(const std::string& dir) {
  std::vector<Measurement> out;
  int found = 0;
  for (const auto& [name, seq_sweep] : {std::pair{kCvFile, false}, {kNlpBatchFile, false}, {kNlpSeqFile, true}}) {
    const std::string path = (std::filesystem::path(dir) / name).string();
    if (!std::filesystem::exists(path)) continue;
    ++found;
    FF_RETURN_IF_ERROR(ReadFile(path, seq_sweep, out));
  }
  if (found == 0) {
    return Status::NotFound("no calibration data in '" + dir + "' (expected " + kCvFile + ", " + kNlpBatchFile +
                            " or " + kNlpSeqFile + ")");
  }
  return out;
}

std::vector<RatioConstraint> DefaultRatioConstraints() {
  std::vector<RatioConstraint> out;
  for (const char* model : {"resnet50", "resnet152"}) {
    for (int batch : {8, 16, 32, 64, 128}) out.push_back({model, "4g.40gb", "3g.40gb", batch, 0.82, 0.89});
  }
  return out;
}

Result<CalibrationSummary> Evaluate(const LatencyModel& model, const std::vector<Measurement>& data,
                                    const std::vector<RatioConstraint>& ratios) {
  const gpu::GpuType& a100 = gpu::GetGpuType(gpu::GpuModel::kA100_80GB);
  ModelCache models;
  CalibrationSummary summary;
  std::vector<double> accepted;
  std::vector<double> seq;
  for (const Measurement& m : data) {
    const gpu::MigProfile* profile = a100.FindProfile(m.profile);
    if (profile == nullptr) return Status::InvalidArgument(m.file + ": unknown profile '" + m.profile + "'");
    FF_ASSIGN_OR_RETURN(const FunctionSpec* f, models.Get(m.model, m.seq_len));
    CalibrationPoint p;
    p.m = m;
    p.modelled_ms = model.ModelMs(*f, a100, *profile, m.batch);
    p.error = std::abs(p.modelled_ms - m.measured_ms) / m.measured_ms;
    if (m.acceptance) accepted.push_back(p.error);
    if (m.file == kNlpSeqFile) seq.push_back(p.error);
    summary.points.push_back(std::move(p));
  }
  summary.acceptance_points = accepted.size();
  summary.median_error = Median(accepted);
  summary.worst_error = accepted.empty() ? 0 : *std::max_element(accepted.begin(), accepted.end());
  summary.seq_median_error = Median(seq);
  summary.seq_worst_error = seq.empty() ? 0 : *std::max_element(seq.begin(), seq.end());
  for (const RatioConstraint& c : ratios) {
    const gpu::MigProfile* top = a100.FindProfile(c.profile);
    const gpu::MigProfile* bottom = a100.FindProfile(c.over_profile);
    if (top == nullptr || bottom == nullptr) return Status::InvalidArgument("ratio constraint: unknown profile");
    FF_ASSIGN_OR_RETURN(const FunctionSpec* f, models.Get(c.model, 0));
    summary.ratios.push_back(
        RatioCheck{c, model.ModelMs(*f, a100, *top, c.batch) / model.ModelMs(*f, a100, *bottom, c.batch)});
  }
  return summary;
}

Result<LatencyModelParams> Fit(const std::vector<Measurement>& data, LatencyModelParams start,
                               const std::vector<RatioConstraint>& ratios) {
  // Objective: mean squared log error over the acceptance set, plus the worst one, so that no point is
  // sacrificed for the median; plus, per ratio constraint, the squared log distance outside its range, weighted
  // like kRatioWeight data points.
  const auto objective = [&data, &ratios](const LatencyModelParams& p) -> Result<double> {
    FF_ASSIGN_OR_RETURN(CalibrationSummary s, Evaluate(LatencyModel(p), data, ratios));
    double sum = 0;
    double worst = 0;
    for (const CalibrationPoint& point : s.points) {
      if (!point.m.acceptance) continue;
      const double e = std::log(point.modelled_ms / point.m.measured_ms);
      sum += e * e;
      worst = std::max(worst, e * e);
    }
    double penalty = 0;
    for (const RatioCheck& r : s.ratios) {
      const double out = r.modelled < r.c.lo   ? std::log(r.c.lo / r.modelled)
                         : r.modelled > r.c.hi ? std::log(r.modelled / r.c.hi)
                                               : 0.0;
      penalty += out * out;
    }
    const double n = static_cast<double>(std::max<size_t>(1, s.acceptance_points));
    return (sum + kRatioWeight * penalty) / n + kWorstWeight * worst;
  };
  using Point = std::array<double, 6>;
  const auto params_of = [&start](const Point& v) {
    LatencyModelParams p = start;
    p.launch_us = std::exp(v[0]);
    p.fp32_matmul_efficiency = std::min(1.0, std::exp(v[1]));
    p.tf32_conv_efficiency = std::min(1.0, std::exp(v[2]));
    p.memory_efficiency = std::min(1.0, std::exp(v[3]));
    p.kernel_overhead_us = std::exp(v[4]);
    p.sm_bandwidth_gbs = std::exp(v[5]);
    return p;
  };
  // The per-SM bandwidth cap is flat (it binds nowhere) above some value, where a local search cannot feel it:
  // start from several caps, from binding on every slice to binding on none, and keep the best.
  Point best_x{};
  double best = std::numeric_limits<double>::infinity();
  for (const double sm_gbs : {6.0, 9.0, 13.0, std::min(start.sm_bandwidth_gbs, 1e6)}) {
    Point x = {
        std::log(start.launch_us),         std::log(start.fp32_matmul_efficiency), std::log(start.tf32_conv_efficiency),
        std::log(start.memory_efficiency), std::log(start.kernel_overhead_us),     std::log(sm_gbs)};
    FF_ASSIGN_OR_RETURN(double value, objective(params_of(x)));
    // Restart with a large step while a restart still improves: pattern search stalls in narrow valleys.
    for (int restart = 0; restart < 8; ++restart) {
      const double before = value;
      for (double step = 0.5; step > 1e-3;) {
        bool improved = false;
        for (size_t i = 0; i < x.size(); ++i) {
          for (double dir : {-1.0, 1.0}) {
            Point y = x;
            y[i] += dir * step;
            FF_ASSIGN_OR_RETURN(double v, objective(params_of(y)));
            if (v < value) {
              value = v;
              x = y;
              improved = true;
            }
          }
        }
        if (!improved) step /= 2;
      }
      if (value > before * 0.999) break;
    }
    if (value < best) {
      best = value;
      best_x = x;
    }
  }
  return params_of(best_x);
}

namespace {

HeldOut Score(std::string kind, std::string name, const std::vector<double>& errors) {
  HeldOut h{std::move(kind), std::move(name), errors.size(), Median(errors), 0};
  h.worst_error = errors.empty() ? 0 : *std::max_element(errors.begin(), errors.end());
  return h;
}

}  // namespace

Result<CrossValidation> CrossValidate(const std::vector<Measurement>& data, const std::vector<RatioConstraint>& ratios,
                                      LatencyModelParams start) {
  std::vector<std::string> profiles;
  std::vector<std::string> models;
  for (const Measurement& m : data) {
    if (!m.acceptance) continue;
    if (std::find(profiles.begin(), profiles.end(), m.profile) == profiles.end()) profiles.push_back(m.profile);
    if (std::find(models.begin(), models.end(), m.model) == models.end()) models.push_back(m.model);
  }
  CrossValidation cv;
  std::vector<double> all_profile;
  std::vector<double> all_model;
  for (const bool by_profile : {true, false}) {
    for (const std::string& held : by_profile ? profiles : models) {
      std::vector<Measurement> train;
      std::vector<Measurement> test;
      for (const Measurement& m : data) {
        if (!m.acceptance) continue;
        ((by_profile ? m.profile : m.model) == held ? test : train).push_back(m);
      }
      std::vector<RatioConstraint> kept;
      for (const RatioConstraint& c : ratios) {
        if (by_profile || c.model != held) kept.push_back(c);
      }
      FF_ASSIGN_OR_RETURN(LatencyModelParams fitted, Fit(train, start, kept));
      FF_ASSIGN_OR_RETURN(CalibrationSummary s, Evaluate(LatencyModel(fitted), test));
      std::vector<double> errors;
      for (const CalibrationPoint& p : s.points) errors.push_back(p.error);
      (by_profile ? all_profile : all_model)
          .insert((by_profile ? all_profile : all_model).end(), errors.begin(), errors.end());
      cv.folds.push_back(Score(by_profile ? "profile" : "model", held, errors));
    }
  }
  cv.profile_median_error = Median(all_profile);
  cv.model_median_error = Median(all_model);
  return cv;
}

}  // namespace fluidfaas::model
