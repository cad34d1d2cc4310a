#include "gpu/layout.h"

#include <algorithm>
#include <charconv>
#include <map>

#include "common/strings.h"

namespace fluidfaas::gpu {
namespace {

std::string MemoryRange(int first, int last) {
  return first == last ? "memory slice " + std::to_string(first)
                       : "memory slices " + std::to_string(first) + "-" + std::to_string(last);
}

// Count rules that need no placement: one +me, max per profile, 7 SM slices, 4g + 3g before R510.
Status CheckProfileMix(const GpuType& type, const std::vector<const MigProfile*>& profiles, const LayoutRules& rules) {
  const auto me = std::count_if(profiles.begin(), profiles.end(), [](auto* p) { return p->media_extensions; });
  if (me > 1) {
    return Status::InvalidArgument("at most one +me profile per GPU; the layout has " + std::to_string(me));
  }
  std::map<int, int> count_by_id;
  for (const MigProfile* p : profiles) ++count_by_id[p->id];
  for (const auto& [id, count] : count_by_id) {
    const MigProfile& p = *type.FindProfileById(id);
    if (count > p.max_count) {
      return Status::InvalidArgument(std::to_string(count) + " x " + std::string(p.name) + ": at most " +
                                     std::to_string(p.max_count) + " per " + std::string(type.name) + " GPU");
    }
  }
  int sm = 0;
  for (const MigProfile* p : profiles) sm += p->sm_slices;
  if (sm > kSmSlices) {
    return Status::InvalidArgument("the layout uses " + std::to_string(sm) + " SM slices; a GPU has " +
                                   std::to_string(kSmSlices));
  }
  if (rules.driver_before_r510 && count_by_id.contains(5) && count_by_id.contains(9)) {
    return Status::InvalidArgument(std::string(type.FindProfileById(5)->name) + " + " +
                                   std::string(type.FindProfileById(9)->name) +
                                   " on one GPU needs driver R510 or later");
  }
  return Status::Ok();
}

Status CheckPlacementAllowed(const PlacedSlice& s) {
  if (s.profile->AllowsStart(s.start)) return Status::Ok();
  return Status::InvalidArgument(std::string(s.profile->name) + " cannot start at memory slice " +
                                 std::to_string(s.start) + " (allowed placements " + s.profile->PlacementsToString() +
                                 ")");
}

// Backtracking search for starts of `todo` (sorted largest first) around the memory slices already `used`.
bool AssignStarts(std::vector<PlacedSlice>& todo, size_t i, uint8_t used) {
  if (i == todo.size()) return true;
  const MigProfile& p = *todo[i].profile;
  for (int start = 0; start < kMemorySlices; ++start) {
    if (!p.AllowsStart(start) || (p.MemoryMask(start) & used) != 0) continue;
    todo[i].start = start;
    if (AssignStarts(todo, i + 1, used | p.MemoryMask(start))) return true;
  }
  return false;
}

}  // namespace

std::string PlacedSlice::ToString() const {
  return std::string(profile->name) + "@" + std::to_string(start);
}

int Layout::sm_slices_used() const {
  int sm = 0;
  for (const PlacedSlice& s : slices_) sm += s.profile->sm_slices;
  return sm;
}

int Layout::memory_slices_used() const {
  int mem = 0;
  for (const PlacedSlice& s : slices_) mem += s.profile->memory_slices;
  return mem;
}

std::string Layout::ToString() const {
  return Join(slices_, "+", [](const PlacedSlice& s) { return s.ToString(); });
}

Result<std::vector<SliceRequest>> ParseLayoutSpec(const GpuType& type, std::string_view spec) {
  if (spec.empty()) return Status::InvalidArgument("empty layout");
  // Split on '+', re-attaching "me" (and "me@N") to the part before it.
  std::vector<std::string> parts;
  size_t pos = 0;
  while (true) {
    const size_t plus = spec.find('+', pos);
    std::string part(spec.substr(pos, plus == std::string_view::npos ? std::string_view::npos : plus - pos));
    if ((part == "me" || part.starts_with("me@")) && !parts.empty() && parts.back().find('@') == std::string::npos) {
      parts.back() += "+" + part;
    } else {
      parts.push_back(std::move(part));
    }
    if (plus == std::string_view::npos) break;
    pos = plus + 1;
  }
  std::vector<SliceRequest> requests;
  for (const std::string& part : parts) {
    if (part.empty()) return Status::InvalidArgument("layout '" + std::string(spec) + "' has an empty part");
    const size_t at = part.find('@');
    const std::string name = part.substr(0, at);
    SliceRequest request;
    request.profile = type.FindProfile(name);
    if (request.profile == nullptr) {
      return Status::InvalidArgument("profile '" + name + "' does not exist on " + std::string(type.name) +
                                     " (profiles: " + type.ProfileNames() + ")");
    }
    if (at != std::string::npos) {
      const std::string digits = part.substr(at + 1);
      int start = -1;
      const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), start);
      if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || start < 0) {
        return Status::InvalidArgument("'" + part + "': placement must be a memory slice number after '@'");
      }
      request.start = start;
    }
    requests.push_back(request);
  }
  return requests;
}

Result<Layout> MakeLayout(const GpuType& type, std::vector<PlacedSlice> slices, const LayoutRules& rules) {
  for (const PlacedSlice& s : slices) FF_RETURN_IF_ERROR(CheckPlacementAllowed(s));
  std::vector<const MigProfile*> profiles;
  profiles.reserve(slices.size());
  for (const PlacedSlice& s : slices) profiles.push_back(s.profile);
  FF_RETURN_IF_ERROR(CheckProfileMix(type, profiles, rules));
  std::sort(slices.begin(), slices.end(), [](const PlacedSlice& a, const PlacedSlice& b) {
    return a.start != b.start ? a.start < b.start : a.profile->id < b.profile->id;
  });
  // Sorted by start, any overlap shows between neighbours.
  for (size_t i = 0; i + 1 < slices.size(); ++i) {
    const PlacedSlice& a = slices[i];
    const PlacedSlice& b = slices[i + 1];
    if (b.start < a.end()) {
      return Status::InvalidArgument(b.ToString() + " overlaps " + a.ToString() + " on " +
                                     MemoryRange(b.start, std::min(a.end(), b.end()) - 1));
    }
  }
  Layout layout;
  layout.gpu_type_ = &type;
  layout.slices_ = std::move(slices);
  return layout;
}

Result<Layout> PlaceLayout(const GpuType& type, const std::vector<SliceRequest>& requests, const LayoutRules& rules) {
  std::vector<PlacedSlice> fixed;
  std::vector<PlacedSlice> todo;
  for (const SliceRequest& r : requests) {
    (r.start ? fixed : todo).push_back(PlacedSlice{r.profile, r.start.value_or(0)});
  }
  if (todo.empty()) return MakeLayout(type, std::move(fixed), rules);

  // Report count and mix problems before trying placements, so the reason is the real one.
  for (const PlacedSlice& s : fixed) FF_RETURN_IF_ERROR(CheckPlacementAllowed(s));
  std::vector<const MigProfile*> profiles;
  profiles.reserve(requests.size());
  for (const SliceRequest& r : requests) profiles.push_back(r.profile);
  FF_RETURN_IF_ERROR(CheckProfileMix(type, profiles, rules));
  FF_ASSIGN_OR_RETURN(Layout fixed_layout, MakeLayout(type, fixed, rules));  // overlaps among given starts

  uint8_t used = 0;
  for (const PlacedSlice& s : fixed) used |= s.profile->MemoryMask(s.start);
  std::stable_sort(todo.begin(), todo.end(), [](const PlacedSlice& a, const PlacedSlice& b) {
    return a.profile->memory_slices > b.profile->memory_slices;
  });
  if (!AssignStarts(todo, 0, used)) {
    std::string why = "no placement fits " + Join(todo, " + ", [](const PlacedSlice& s) { return s.profile->name; });
    if (!fixed.empty()) why += " beside " + fixed_layout.ToString();
    return Status::InvalidArgument(why + " in " + std::to_string(kMemorySlices) + " memory slices");
  }
  fixed.insert(fixed.end(), todo.begin(), todo.end());
  return MakeLayout(type, std::move(fixed), rules);
}

Result<Layout> ParseLayout(const GpuType& type, std::string_view spec, const LayoutRules& rules) {
  FF_ASSIGN_OR_RETURN(std::vector<SliceRequest> requests, ParseLayoutSpec(type, spec));
  return PlaceLayout(type, requests, rules);
}

namespace {

// Depth-first enumeration over candidate (profile, start) pairs in a fixed order; each valid set is reached
// once, by deciding candidate by candidate whether it is in.
class MaximalLayoutSearch {
 public:
  MaximalLayoutSearch(const GpuType& type, ProfileSet set, const LayoutRules& rules) : type_(type), rules_(rules) {
    for (const MigProfile& p : type.profiles) {
      if (set == ProfileSet::kClassic && !p.classic()) continue;
      for (int start = 0; start < kMemorySlices; ++start) {
        if (p.AllowsStart(start)) candidates_.push_back(PlacedSlice{&p, start});
      }
    }
  }

  std::vector<Layout> Run() {
    Visit(0);
    std::sort(found_.begin(), found_.end(),
              [](const Layout& a, const Layout& b) { return a.ToString() < b.ToString(); });
    return std::move(found_);
  }

 private:
  bool CanAdd(const PlacedSlice& c) const {
    if ((c.profile->MemoryMask(c.start) & used_) != 0) return false;
    if (sm_ + c.profile->sm_slices > kSmSlices) return false;
    int same = 0;
    int me = 0;
    bool has4g = c.profile->id == 5;
    bool has3g = c.profile->id == 9;
    for (const PlacedSlice& s : chosen_) {
      same += s.profile == c.profile;
      me += s.profile->media_extensions;
      has4g = has4g || s.profile->id == 5;
      has3g = has3g || s.profile->id == 9;
    }
    if (same + 1 > c.profile->max_count) return false;
    if (c.profile->media_extensions && me >= 1) return false;
    return !(rules_.driver_before_r510 && has4g && has3g);
  }

  void Visit(size_t i) {
    if (i == candidates_.size()) {
      if (chosen_.empty()) return;
      for (const PlacedSlice& c : candidates_) {
        if (CanAdd(c)) return;  // not maximal
      }
      Result<Layout> layout = MakeLayout(type_, chosen_, rules_);
      if (layout.ok()) found_.push_back(std::move(layout).value());
      return;
    }
    const PlacedSlice& c = candidates_[i];
    if (CanAdd(c)) {
      chosen_.push_back(c);
      used_ |= c.profile->MemoryMask(c.start);
      sm_ += c.profile->sm_slices;
      Visit(i + 1);
      sm_ -= c.profile->sm_slices;
      used_ &= static_cast<uint8_t>(~c.profile->MemoryMask(c.start));
      chosen_.pop_back();
    }
    Visit(i + 1);
  }

  const GpuType& type_;
  const LayoutRules rules_;
  std::vector<PlacedSlice> candidates_;
  std::vector<PlacedSlice> chosen_;
  uint8_t used_ = 0;
  int sm_ = 0;
  std::vector<Layout> found_;
};

}  // namespace

std::vector<Layout> EnumerateMaximalLayouts(const GpuType& type, ProfileSet set, const LayoutRules& rules) {
  return MaximalLayoutSearch(type, set, rules).Run();
}

}  // namespace fluidfaas::gpu
