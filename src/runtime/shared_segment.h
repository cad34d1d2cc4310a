// SharedSegment: a sealed memfd mapping shared between the node and its worker processes.
//
// Segments are anonymous (memfd_create): they have no name in /dev/shm or anywhere else, so no other process can
// guess or open one; a peer gets one only as a file descriptor over the node's control socket (SCM_RIGHTS). The
// inode is mode 0600 and the memory goes away with the last descriptor or mapping, so a killed node leaves nothing
// behind (its workers exit when their control sockets hang up). The size is sealed (F_SEAL_SHRINK | F_SEAL_GROW |
// F_SEAL_SEAL) before the segment is shared, so a faulty peer cannot truncate it under the other side's mapping
// (which would turn every later access into SIGBUS); Map refuses a descriptor without those seals.
//
// Thread safety: a plain owner of a mapping. The bytes are shared; their protocol is the user's (ring.h).
#pragma once

#include <cstddef>
#include <string_view>

#include "common/result.h"
#include "runtime/unique_fd.h"

namespace fluidfaas::runtime {

class SharedSegment {
 public:
  // A zero-filled segment of `bytes` (rounded up to pages), sealed. `tag` shows in /proc/PID/fd as
  // "memfd:fluidfaas-<tag>". ResourceExhausted when the kernel refuses the memory.
  static Result<SharedSegment> Create(std::string_view tag, size_t bytes);
  // Maps a segment received from a peer; takes the descriptor. InvalidArgument when it is not a sealed memfd.
  static Result<SharedSegment> Map(UniqueFd fd);

  SharedSegment() = default;
  SharedSegment(SharedSegment&& other) noexcept;
  SharedSegment& operator=(SharedSegment&& other) noexcept;
  SharedSegment(const SharedSegment&) = delete;
  SharedSegment& operator=(const SharedSegment&) = delete;
  ~SharedSegment();

  std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  int fd() const { return fd_.get(); }
  bool valid() const { return data_ != nullptr; }

 private:
  SharedSegment(UniqueFd fd, std::byte* data, size_t size) : fd_(std::move(fd)), data_(data), size_(size) {}
  void Unmap();

  UniqueFd fd_;
  std::byte* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace fluidfaas::runtime
