#include "runtime/residency.h"

#include <unistd.h>

#include <algorithm>

namespace fluidfaas::runtime {

std::vector<WarmCopy> HostResidency::Add(const WarmCopy& copy) {
  Remove(copy.key);
  copies_[copy.key] = Entry{copy, ++tick_};
  used_ += copy.bytes;
  std::vector<WarmCopy> dropped;
  while (used_ > budget_ && !copies_.empty()) {
    // The least recently added other copy; the new one goes only when it alone is over budget.
    auto victim = copies_.end();
    for (auto it = copies_.begin(); it != copies_.end(); ++it) {
      if (it->first == copy.key && copies_.size() > 1) continue;
      if (victim == copies_.end() || it->second.tick < victim->second.tick) victim = it;
    }
    dropped.push_back(victim->second.copy);
    used_ -= victim->second.copy.bytes;
    copies_.erase(victim);
  }
  return dropped;
}

bool HostResidency::Remove(const WarmKey& key) {
  const auto it = copies_.find(key);
  if (it == copies_.end()) return false;
  used_ -= it->second.copy.bytes;
  copies_.erase(it);
  return true;
}

std::vector<WarmCopy> HostResidency::RemoveSlice(size_t slice) {
  std::vector<WarmCopy> out;
  for (auto it = copies_.begin(); it != copies_.end();) {
    if (it->second.copy.slice == slice) {
      out.push_back(it->second.copy);
      used_ -= it->second.copy.bytes;
      it = copies_.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

int64_t DefaultHostMemoryBytes() {
  const int64_t total = static_cast<int64_t>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGESIZE);
  const int64_t headroom = std::max<int64_t>(total / 4, int64_t{4} << 30);
  return std::max<int64_t>(total - headroom, int64_t{1} << 30);
}

}  // namespace fluidfaas::runtime
