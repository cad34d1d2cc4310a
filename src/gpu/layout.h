// MIG layouts: which GPU instances one GPU is partitioned into, and where each one starts.
//
// A layout is written as profiles joined by '+', each with an optional placement ("@start", in memory slices):
//   1g.10gb+2g.20gb+4g.40gb            placements assigned by PlaceLayout
//   4g.40gb@0+2g.20gb@4+1g.10gb@6      placements given (checked, not changed)
//   1g.10gb+me@3+2g.20gb               a media-extension profile keeps its "+me"
// ParseLayout accepts a written layout, assigns missing placements and validates the result, answering either
// a placed Layout or an InvalidArgument that says precisely what is wrong.
//
// Thread safety: plain values and pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "gpu/gpu_type.h"

namespace fluidfaas::gpu {

// Rules that depend on the driver, not on the GPU.
struct LayoutRules {
  // Drivers before R510 reject 4g + 3g on one GPU. Default: false (a current driver).
  bool driver_before_r510 = false;
};

// One GPU instance: a profile at a start memory slice.
struct PlacedSlice {
  const MigProfile* profile = nullptr;
  int start = 0;

  int end() const { return start + profile->memory_slices; }  // one past the last memory slice
  std::string ToString() const;                               // "2g.20gb@4"
  friend bool operator==(const PlacedSlice& a, const PlacedSlice& b) {
    return a.profile == b.profile && a.start == b.start;
  }
};

// A validated, fully placed layout of one GPU; slices sorted by start.
class Layout {
 public:
  const GpuType& gpu_type() const { return *gpu_type_; }
  const std::vector<PlacedSlice>& slices() const { return slices_; }
  int sm_slices_used() const;
  int memory_slices_used() const;
  bool empty() const { return slices_.empty(); }

  // "4g.40gb@0+2g.20gb@4+1g.10gb@6"; parses back to the same layout.
  std::string ToString() const;

  friend bool operator==(const Layout& a, const Layout& b) {
    return a.gpu_type_ == b.gpu_type_ && a.slices_ == b.slices_;
  }

 private:
  friend Result<Layout> MakeLayout(const GpuType&, std::vector<PlacedSlice>, const LayoutRules&);
  const GpuType* gpu_type_ = nullptr;
  std::vector<PlacedSlice> slices_;
};

// A slice as written, before placement.
struct SliceRequest {
  const MigProfile* profile = nullptr;
  std::optional<int> start;  // nullopt: PlaceLayout chooses
};

// Parses the written form (see the top of this file) into requests. InvalidArgument for an empty layout, an
// empty part, a profile the GPU type does not have, or a malformed "@start".
Result<std::vector<SliceRequest>> ParseLayoutSpec(const GpuType& type, std::string_view spec);

// Checks the requests and chooses a start for each one without: larger profiles first, each at the lowest
// allowed free start, backtracking when that leaves no room for the rest. Given starts are kept.
Result<Layout> PlaceLayout(const GpuType& type, const std::vector<SliceRequest>& requests,
                           const LayoutRules& rules = {});

// ParseLayoutSpec then PlaceLayout.
Result<Layout> ParseLayout(const GpuType& type, std::string_view spec, const LayoutRules& rules = {});

// Validates placed slices and returns them as a Layout. The first broken rule is reported, in this order:
// placement not allowed, more than one +me profile, too many of one profile, over 7 SM slices, overlapping
// memory slices, 4g + 3g with a driver before R510.
Result<Layout> MakeLayout(const GpuType& type, std::vector<PlacedSlice> slices, const LayoutRules& rules = {});

enum class ProfileSet {
  kClassic,  // 1g, 2g, 3g, 4g, 7g (MigProfile::classic)
  kAll,      // every profile of the GPU type, +me and 1g with two memory slices included
};

// Every maximal placed layout: valid, and no instance of a profile in `set` can be added to it. Sorted by
// ToString(). With kClassic an A100-80GB has 19 (18 with driver_before_r510).
std::vector<Layout> EnumerateMaximalLayouts(const GpuType& type, ProfileSet set, const LayoutRules& rules = {});

}  // namespace fluidfaas::gpu
