#include "gpu/topology.h"

#include <charconv>
#include <cstdio>
#include <map>

#include "common/limits.h"

namespace fluidfaas::gpu {
namespace {

uint64_t Fnv1a(std::string_view s, uint64_t seed) {
  uint64_t h = 1469598103934665603ull ^ seed;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

bool ParseInt(std::string_view s, int* out) {
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return !s.empty() && ec == std::errc() && end == s.data() + s.size() && *out >= 0;
}

}  // namespace

std::string SliceId::ToString() const {
  return std::to_string(gpu) + ":" + profile + "@" + std::to_string(start);
}

Result<SliceId> SliceId::Parse(std::string_view text) {
  const auto bad = [&text](std::string_view why) {
    return Status::InvalidArgument("slice id '" + Printable(text, 40) + "': " + std::string(why) +
                                   " (expected gpu:profile@start, e.g. 0:2g.20gb@4)");
  };
  const size_t colon = text.find(':');
  const size_t at = text.rfind('@');
  if (colon == std::string_view::npos || at == std::string_view::npos || at < colon) {
    return bad("missing ':' or '@'");
  }
  SliceId id;
  if (!ParseInt(text.substr(0, colon), &id.gpu) || id.gpu < 0 || id.gpu >= kMaxSliceListGpus) {
    return bad("GPU index is not a number in 0.." + std::to_string(kMaxSliceListGpus - 1));
  }
  id.profile = std::string(text.substr(colon + 1, at - colon - 1));
  if (id.profile.empty()) return bad("empty profile");
  if (!ParseInt(text.substr(at + 1), &id.start) || id.start < 0 || id.start > 7) {
    return bad("start is not a memory slice 0..7");
  }
  return id;
}

Result<std::vector<std::pair<int, PlacedSlice>>> ParseSliceList(const GpuType& type, std::string_view text) {
  std::vector<std::pair<int, PlacedSlice>> out;
  std::map<int, std::vector<PlacedSlice>> by_gpu;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    if (comma == std::string_view::npos) comma = text.size();
    const std::string_view item = text.substr(pos, comma - pos);
    pos = comma + 1;
    if (out.size() >= static_cast<size_t>(kMaxSliceListGpus) * 8) {
      return Status::InvalidArgument("slice list: more than " + std::to_string(kMaxSliceListGpus * 8) + " slices");
    }
    FF_ASSIGN_OR_RETURN(SliceId id, SliceId::Parse(item));
    const MigProfile* profile = type.FindProfile(id.profile);
    if (profile == nullptr) {
      return Status::InvalidArgument("slice '" + Printable(item, 40) + "': profile '" + Printable(id.profile, 20) +
                                     "' does not exist on " + std::string(type.name));
    }
    by_gpu[id.gpu].push_back(PlacedSlice{profile, id.start});
    out.emplace_back(id.gpu, PlacedSlice{profile, id.start});
  }
  // The slices of one GPU must be a valid (partial) layout: allowed starts, no overlap, no duplicates.
  for (const auto& [g, slices] : by_gpu) {
    Result<Layout> layout = MakeLayout(type, slices);
    if (!layout.ok()) return layout.status().WithContext("GPU " + std::to_string(g));
  }
  return out;
}

const Slice* NodeTopology::FindSlice(std::string_view id) const {
  for (const Slice& s : slices) {
    if (s.id == id) return &s;
  }
  return nullptr;
}

std::string MakeUpUuid(std::string_view prefix, std::string_view key) {
  const uint64_t a = Fnv1a(key, 0);
  const uint64_t b = Fnv1a(key, 0x9e3779b97f4a7c15ull);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                static_cast<unsigned>((a >> 16) & 0xffff), static_cast<unsigned>(a & 0xffff),
                static_cast<unsigned>(b >> 48), static_cast<unsigned long long>(b & 0xffffffffffffull));
  return std::string(prefix) + "-" + buf;
}

NodeTopology MakeNodeTopology(std::string name, bool emulated, std::string source, std::vector<GpuInfo> gpus) {
  NodeTopology node;
  node.name = std::move(name);
  node.emulated = emulated;
  node.source = std::move(source);
  for (const GpuInfo& gpu : gpus) {
    const auto& placed = gpu.layout.slices();
    for (size_t i = 0; i < placed.size(); ++i) {
      Slice s;
      s.gpu = gpu.index;
      s.profile = placed[i].profile;
      s.start = placed[i].start;
      s.id = SliceId{gpu.index, std::string(s.profile->name), s.start}.ToString();
      s.memory_mib = s.profile->memory_mib;
      s.sms = s.profile->sms;
      if (i < gpu.slice_uuids.size()) {
        s.uuid = gpu.slice_uuids[i];
      } else if (!gpu.mig_enabled) {
        s.uuid = gpu.uuid;
      } else {
        s.uuid = MakeUpUuid("MIG", node.name + "/" + s.id);
      }
      s.gpu_instance_id = i < gpu.gpu_instance_ids.size() ? gpu.gpu_instance_ids[i] : -1;
      node.slices.push_back(std::move(s));
    }
  }
  node.gpus = std::move(gpus);
  return node;
}

}  // namespace fluidfaas::gpu
