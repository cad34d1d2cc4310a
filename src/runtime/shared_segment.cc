#include "runtime/shared_segment.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace fluidfaas::runtime {
namespace {

constexpr int kSeals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;

std::string Errno(std::string_view what) {
  return std::string(what) + ": " + std::strerror(errno);
}

}  // namespace

Result<SharedSegment> SharedSegment::Create(std::string_view tag, size_t bytes) {
  if (bytes == 0) return Status::InvalidArgument("shared segment: size 0");
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  if (bytes > (size_t{1} << 40)) return Status::InvalidArgument("shared segment: " + std::to_string(bytes) + " bytes");
  const size_t size = (bytes + page - 1) / page * page;
  const std::string name = "fluidfaas-" + std::string(tag);
  UniqueFd fd(memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd.valid()) return Status::ResourceExhausted(Errno("memfd_create " + name));
  if (fchmod(fd.get(), 0600) != 0) return Status::IoError(Errno("fchmod " + name));
  if (ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
    return Status::ResourceExhausted(Errno("ftruncate " + name + " to " + std::to_string(size)));
  }
  if (fcntl(fd.get(), F_ADD_SEALS, kSeals) != 0) return Status::IoError(Errno("sealing " + name));
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (p == MAP_FAILED) return Status::ResourceExhausted(Errno("mmap " + name));
  return SharedSegment(std::move(fd), static_cast<std::byte*>(p), size);
}

Result<SharedSegment> SharedSegment::Map(UniqueFd fd) {
  if (!fd.valid()) return Status::InvalidArgument("shared segment: no descriptor");
  const int seals = fcntl(fd.get(), F_GET_SEALS);
  if (seals < 0 || (seals & kSeals) != kSeals) {
    return Status::InvalidArgument("shared segment: the descriptor is not a sealed memfd");
  }
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return Status::IoError(Errno("fstat shared segment"));
  if (st.st_size <= 0) return Status::InvalidArgument("shared segment: empty");
  const auto size = static_cast<size_t>(st.st_size);
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (p == MAP_FAILED) return Status::ResourceExhausted(Errno("mmap shared segment"));
  return SharedSegment(std::move(fd), static_cast<std::byte*>(p), size);
}

SharedSegment::SharedSegment(SharedSegment&& other) noexcept
    : fd_(std::move(other.fd_)), data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

SharedSegment& SharedSegment::operator=(SharedSegment&& other) noexcept {
  if (this != &other) {
    Unmap();
    fd_ = std::move(other.fd_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

SharedSegment::~SharedSegment() {
  Unmap();
}

void SharedSegment::Unmap() {
  if (data_ != nullptr) munmap(data_, size_);
  data_ = nullptr;
  size_ = 0;
}

}  // namespace fluidfaas::runtime
