// Node topology: the GPUs of one node, their layouts, and the slices FluidFaaS schedules onto.
//
// A slice's id is "gpu:profile@start" ("0:2g.20gb@4"): stable across restarts and the same for a discovered
// node and an emulated one with the same layouts, so configs, logs and plans can name slices. A GPU with MIG
// disabled is one slice of its full profile ("3:7g.80gb@0").
//
// Thread safety: plain values.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "gpu/layout.h"

namespace fluidfaas::gpu {

// The parts of a slice id. Parse checks the syntax only; whether the slice exists is the topology's business.
struct SliceId {
  int gpu = 0;
  std::string profile;
  int start = 0;

  std::string ToString() const;  // "0:2g.20gb@4"
  static Result<SliceId> Parse(std::string_view text);
  friend bool operator==(const SliceId&, const SliceId&) = default;
};

// GPUs a slice list may name (a cluster's, for planning; a node has at most kMaxGpusPerNode).
inline constexpr int kMaxSliceListGpus = 64;

// "0:2g.20gb@4,0:1g.10gb@6,1:4g.40gb@0": each a profile of `type` at an allowed start; the slices of one GPU
// must form a valid (partial) layout. (GPU index, slice) in the order given.
Result<std::vector<std::pair<int, PlacedSlice>>> ParseSliceList(const GpuType& type, std::string_view text);

struct Slice {
  std::string id;  // "0:2g.20gb@4"
  int gpu = 0;     // index of its GPU on the node
  const MigProfile* profile = nullptr;
  int start = 0;  // first memory slice
  int memory_mib = 0;
  int sms = 0;
  std::string uuid;          // "MIG-..." (real or made up); "GPU-..." for a GPU with MIG disabled
  int gpu_instance_id = -1;  // NVML GPU-instance id; -1 on an emulated node
};

struct GpuInfo {
  int index = 0;
  const GpuType* type = nullptr;
  std::string product;  // as NVML reports it, or the type's product name when emulated
  std::string uuid;     // "GPU-..."
  bool mig_enabled = true;
  Layout layout;  // the full profile alone when MIG is disabled
  // NVML GPU-instance ids of layout.slices(), same order; empty on an emulated node.
  std::vector<int> gpu_instance_ids;
  // MIG device UUIDs of layout.slices(), same order; empty on an emulated node.
  std::vector<std::string> slice_uuids;
};

struct NodeTopology {
  std::string name;
  bool emulated = true;
  std::string source;  // how it was obtained: "nvml", or "emulated (<why>)"
  std::vector<GpuInfo> gpus;
  std::vector<Slice> slices;  // every slice of every GPU, by GPU then start

  // nullptr when there is no such slice.
  const Slice* FindSlice(std::string_view id) const;
};

// Builds the node's slice list from its GPUs (UUIDs of emulated slices are made up from the node name and the
// slice id, the same on every run). REQUIRES: gpus[i].index == i.
NodeTopology MakeNodeTopology(std::string name, bool emulated, std::string source, std::vector<GpuInfo> gpus);

// "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" / "MIG-..." from a hash of `key`: for emulated devices.
std::string MakeUpUuid(std::string_view prefix, std::string_view key);

}  // namespace fluidfaas::gpu
