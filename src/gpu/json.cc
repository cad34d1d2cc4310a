#include "gpu/json.h"

namespace fluidfaas::gpu {

using nlohmann::json;

void to_json(json& j, const MigProfile& p) {
  json starts = json::array();
  for (int s = 0; s < kMemorySlices; ++s) {
    if (p.AllowsStart(s)) starts.push_back(s);
  }
  j = json{{"id", p.id},
           {"name", p.name},
           {"sm_slices", p.sm_slices},
           {"memory_slices", p.memory_slices},
           {"memory_mib", p.memory_mib},
           {"sms", p.sms},
           {"placements", std::move(starts)},
           {"max_count", p.max_count},
           {"media_extensions", p.media_extensions}};
}

void to_json(json& j, const PlacedSlice& s) {
  j = json{{"profile", s.profile->name}, {"start", s.start}};
}

void to_json(json& j, const Layout& layout) {
  j = json{{"slices", layout.slices()}};
}

void to_json(json& j, const Slice& s) {
  j = json{
      {"id", s.id},   {"gpu", s.gpu},  {"profile", s.profile->name}, {"start", s.start}, {"memory_mib", s.memory_mib},
      {"sms", s.sms}, {"uuid", s.uuid}};
  if (s.gpu_instance_id >= 0) j["gpu_instance_id"] = s.gpu_instance_id;
}

void to_json(json& j, const GpuInfo& g) {
  j = json{{"index", g.index}, {"type", g.type->name},         {"product", g.product},
           {"uuid", g.uuid},   {"mig_enabled", g.mig_enabled}, {"layout", g.layout.ToString()}};
}

void to_json(json& j, const NodeTopology& node) {
  j = json{{"name", node.name},
           {"emulated", node.emulated},
           {"source", node.source},
           {"gpus", node.gpus},
           {"slices", node.slices}};
}

}  // namespace fluidfaas::gpu
