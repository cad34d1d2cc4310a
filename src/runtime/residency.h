// HostResidency: the node's books of warm copies (weights kept in host memory after an eviction) against the
// host-memory budget (node config host_memory_gib).
//
// Each warm copy is one stage of one instance, held by the worker of one slice. Adding a copy that takes the
// books over budget names the least recently used other copies to drop to cold until it fits; a copy larger than
// the whole budget is itself dropped. A copy leaves the books when its stage is loaded again, when it is dropped,
// or when its worker dies.
//
// Thread safety: none (the runtime holds its lock around it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <utility>
#include <vector>

namespace fluidfaas::runtime {

struct WarmKey {
  uint64_t instance = 0;
  uint64_t stage = 0;
  auto operator<=>(const WarmKey&) const = default;  // NOLINT(modernize-use-nullptr): a false positive
};

struct WarmCopy {
  WarmKey key;
  size_t slice = 0;
  int64_t bytes = 0;
};

class HostResidency {
 public:
  explicit HostResidency(int64_t budget_bytes) : budget_(budget_bytes) {}

  // Books a warm copy (replacing one under the same key); returns the copies to drop to cold, least recently
  // used first, already removed from the books.
  std::vector<WarmCopy> Add(const WarmCopy& copy);
  // Removes a copy (loaded again, or dropped by the worker); false when it was not booked.
  bool Remove(const WarmKey& key);
  // Removes every copy held on `slice` (its worker died); returns them.
  std::vector<WarmCopy> RemoveSlice(size_t slice);
  bool Contains(const WarmKey& key) const { return copies_.contains(key); }

  int64_t used_bytes() const { return used_; }
  int64_t budget_bytes() const { return budget_; }
  size_t size() const { return copies_.size(); }

 private:
  struct Entry {
    WarmCopy copy;
    uint64_t tick = 0;  // when it was added (higher: more recent)
  };
  int64_t budget_;
  int64_t used_ = 0;
  uint64_t tick_ = 0;
  std::map<WarmKey, Entry> copies_;
};

// The default budget: the machine's memory less a headroom (a quarter, at least 4 GiB), at least 1 GiB.
int64_t DefaultHostMemoryBytes();

}  // namespace fluidfaas::runtime
