#include "model/profile.h"

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

namespace fluidfaas::model {

using nlohmann::json;

FunctionProfile MakeModelledProfile(const FunctionSpec& f, const LatencyModel& model,
                                    const std::vector<const gpu::GpuType*>& gpus) {
  FunctionProfile p;
  p.function = f.name;
  p.dtype = f.dtype;
  p.seq_len = f.seq_len;
  p.source = "modelled";
  for (const Block& b : f.blocks) p.blocks.push_back(b.name);
  for (const gpu::GpuType* type : gpus) {
    for (const gpu::MigProfile& slice : type->profiles) {
      if (slice.media_extensions) continue;  // same compute and memory as its plain profile
      for (int batch = 1;; batch = std::min(batch * 2, f.max_batch)) {
        ProfileEntry e{std::string(type->name), std::string(slice.name), batch, {}};
        for (const Block& b : f.blocks) e.block_ms.push_back(model.BlockMs(b, f.dtype, *type, slice, batch));
        p.entries.push_back(std::move(e));
        if (batch >= f.max_batch) break;
      }
    }
  }
  return p;
}

json ProfileToJson(const FunctionProfile& p) {
  json entries = json::array();
  for (const ProfileEntry& e : p.entries) {
    entries.push_back({{"gpu", e.gpu}, {"profile", e.profile}, {"batch", e.batch}, {"block_ms", e.block_ms}});
  }
  return {{"function", p.function}, {"dtype", ToString(p.dtype)}, {"seq_len", p.seq_len},
          {"source", p.source},     {"blocks", p.blocks},         {"entries", std::move(entries)}};
}

Result<FunctionProfile> ProfileFromJson(const json& j) {
  if (!j.is_object()) return Status::InvalidArgument("profile: expected a JSON object");
  FunctionProfile p;
  try {
    p.function = j.at("function").get<std::string>();
    FF_ASSIGN_OR_RETURN(p.dtype, ParseDType(j.at("dtype").get<std::string>()));
    p.seq_len = j.value("seq_len", 0);
    p.source = j.value("source", std::string("unknown"));
    p.blocks = j.at("blocks").get<std::vector<std::string>>();
    const json& entries = j.at("entries");
    if (!entries.is_array()) return Status::InvalidArgument("profile.entries: expected an array");
    std::set<std::tuple<std::string, std::string, int>> seen;
    for (size_t i = 0; i < entries.size(); ++i) {
      const std::string where = "profile.entries[" + std::to_string(i) + "]";
      ProfileEntry e;
      e.gpu = entries[i].at("gpu").get<std::string>();
      e.profile = entries[i].at("profile").get<std::string>();
      e.batch = entries[i].at("batch").get<int>();
      e.block_ms = entries[i].at("block_ms").get<std::vector<double>>();
      FF_ASSIGN_OR_RETURN(const gpu::GpuType* type, gpu::FindGpuType(e.gpu));
      if (type->FindProfile(e.profile) == nullptr) {
        return Status::InvalidArgument(where + ": profile '" + e.profile + "' does not exist on " + e.gpu);
      }
      if (e.batch < 1) return Status::InvalidArgument(where + ".batch: must be at least 1");
      if (e.block_ms.size() != p.blocks.size()) {
        return Status::InvalidArgument(where + ".block_ms: " + std::to_string(e.block_ms.size()) + " times for " +
                                       std::to_string(p.blocks.size()) + " blocks");
      }
      for (double ms : e.block_ms) {
        if (!(ms >= 0)) return Status::InvalidArgument(where + ".block_ms: times must be non-negative numbers");
      }
      if (!seen.emplace(e.gpu, e.profile, e.batch).second) {
        return Status::InvalidArgument(where + ": a second entry for " + e.gpu + " " + e.profile + " batch " +
                                       std::to_string(e.batch));
      }
      p.entries.push_back(std::move(e));
    }
  } catch (const json::exception& e) {
    return Status::InvalidArgument(std::string("profile: ") + e.what());
  }
  return p;
}

Status SaveProfile(const FunctionProfile& p, const std::string& path) {
  std::ofstream out(path);
  if (!out) return Status::IoError("cannot write '" + path + "'");
  out << ProfileToJson(p).dump(1) << '\n';
  if (!out) return Status::IoError("cannot write '" + path + "'");
  return Status::Ok();
}

Result<FunctionProfile> LoadProfile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("cannot open profile '" + path + "'");
  json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::InvalidArgument(path + ": not valid JSON");
  Result<FunctionProfile> p = ProfileFromJson(j);
  if (!p.ok()) return p.status().WithContext(path);
  return p;
}

Status CheckProfileMatches(const FunctionProfile& p, const FunctionSpec& f) {
  if (p.function != f.name) {
    return Status::InvalidArgument("profile is for '" + p.function + "', not '" + f.name + "'");
  }
  if (p.dtype != f.dtype || p.seq_len != f.seq_len) {
    return Status::InvalidArgument("profile of " + f.name + " is for " + std::string(ToString(p.dtype)) + ", " +
                                   std::to_string(p.seq_len) + " tokens; the function is " +
                                   std::string(ToString(f.dtype)) + ", " + std::to_string(f.seq_len) + " tokens");
  }
  if (p.blocks.size() != f.blocks.size()) {
    return Status::InvalidArgument("profile of " + f.name + " has " + std::to_string(p.blocks.size()) +
                                   " blocks; the function has " + std::to_string(f.blocks.size()));
  }
  for (size_t i = 0; i < p.blocks.size(); ++i) {
    if (p.blocks[i] != f.blocks[i].name) {
      return Status::InvalidArgument("profile of " + f.name + ": block " + std::to_string(i) + " is '" + p.blocks[i] +
                                     "', the function's is '" + f.blocks[i].name + "'");
    }
  }
  return Status::Ok();
}

double ModelledBlockTimes::BlockMs(size_t index, const gpu::GpuType& gpu, const gpu::MigProfile& slice,
                                   int batch) const {
  return model_.BlockMs(f_.blocks[index], f_.dtype, gpu, slice, batch);
}

std::string ModelledBlockTimes::Source(const gpu::GpuType& gpu, const gpu::MigProfile&) const {
  return IsCalibrated(gpu) ? "calibrated" : "modelled";
}

ProfiledBlockTimes::ProfiledBlockTimes(FunctionProfile profile, const BlockTimes& fallback)
    : profile_(std::move(profile)), fallback_(fallback) {
  for (const ProfileEntry& e : profile_.entries) {
    const std::string key = e.gpu + "/" + e.profile;
    auto it = std::find_if(by_slice_.begin(), by_slice_.end(), [&key](const auto& kv) { return kv.first == key; });
    if (it == by_slice_.end()) it = by_slice_.insert(by_slice_.end(), {key, {}});
    it->second.push_back(&e);
  }
  for (auto& [key, list] : by_slice_) {
    std::sort(list.begin(), list.end(),
              [](const ProfileEntry* a, const ProfileEntry* b) { return a->batch < b->batch; });
  }
}

const std::vector<const ProfileEntry*>* ProfiledBlockTimes::Find(const gpu::GpuType& gpu,
                                                                 const gpu::MigProfile& slice) const {
  const std::string key = std::string(gpu.name) + "/" + std::string(slice.name);
  for (const auto& [k, list] : by_slice_) {
    if (k == key) return &list;
  }
  return nullptr;
}

double ProfiledBlockTimes::BlockMs(size_t index, const gpu::GpuType& gpu, const gpu::MigProfile& slice,
                                   int batch) const {
  const std::vector<const ProfileEntry*>* list = Find(gpu, slice);
  if (list == nullptr) return fallback_.BlockMs(index, gpu, slice, batch);
  const auto& l = *list;
  // At or below the smallest profiled batch: its time (a smaller batch is rarely much faster).
  if (batch <= l.front()->batch || l.size() == 1) {
    const double scale = batch <= l.front()->batch ? 1.0 : static_cast<double>(batch) / l.front()->batch;
    return l.front()->block_ms[index] * scale;
  }
  // Interpolate within the segment holding `batch`, or extrapolate along the last one.
  size_t hi = 1;
  while (hi + 1 < l.size() && l[hi]->batch < batch) ++hi;
  const ProfileEntry& a = *l[hi - 1];
  const ProfileEntry& b = *l[hi];
  const double t = static_cast<double>(batch - a.batch) / (b.batch - a.batch);
  return std::max(a.block_ms[index], a.block_ms[index] + t * (b.block_ms[index] - a.block_ms[index]));
}

std::string ProfiledBlockTimes::Source(const gpu::GpuType& gpu, const gpu::MigProfile& slice) const {
  return Find(gpu, slice) != nullptr ? profile_.source : fallback_.Source(gpu, slice);
}

}  // namespace fluidfaas::model
