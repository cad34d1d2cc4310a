// NVML discovery: the GPUs of this node and their MIG instances, read through libnvidia-ml.so.1.
//
// The library is opened at run time with dlopen, so one binary runs with and without a GPU; nothing links
// against NVML or CUDA. Only the few NVML entry points below are declared (with the C ABI of nvml.h). The
// enumeration is written against the function table `Api`, so tests drive it with a fake table.
//
// Thread safety: Library is immutable after Open; Discover may run on any one thread at a time per Api.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "common/result.h"
#include "gpu/topology.h"

namespace fluidfaas::gpu::nvml {

// nvmlReturn_t values used here (nvml.h).
using Return = int;
inline constexpr Return kSuccess = 0;
inline constexpr Return kErrorUninitialized = 1;
inline constexpr Return kErrorInvalidArgument = 2;
inline constexpr Return kErrorNotSupported = 3;
inline constexpr Return kErrorNoPermission = 4;
inline constexpr Return kErrorNotFound = 6;
inline constexpr Return kErrorDriverNotLoaded = 9;
inline constexpr Return kErrorLibraryNotFound = 12;
inline constexpr Return kErrorFunctionNotFound = 13;
inline constexpr Return kErrorUnknown = 999;

inline constexpr unsigned kMigEnabled = 1;         // NVML_DEVICE_MIG_ENABLE
inline constexpr unsigned kDeviceNameBuffer = 96;  // NVML_DEVICE_NAME_V2_BUFFER_SIZE
inline constexpr unsigned kUuidBuffer = 96;        // NVML_DEVICE_UUID_V2_BUFFER_SIZE

// Opaque handles, as in nvml.h.
using Device = struct nvmlDevice_st*;
using GpuInstance = struct nvmlGpuInstance_st*;

struct GpuInstancePlacement {  // nvmlGpuInstancePlacement_t
  unsigned start;
  unsigned size;
};
struct GpuInstanceInfo {  // nvmlGpuInstanceInfo_t
  Device device;
  unsigned id;
  unsigned profile_id;
  GpuInstancePlacement placement;
};

struct Memory {  // nvmlMemory_t
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
};

// The NVML entry points discovery uses; each member has the signature of the nvml.h function it names.
struct Api {
  std::function<Return()> init;                                              // nvmlInit_v2
  std::function<Return()> shutdown;                                          // nvmlShutdown
  std::function<const char*(Return)> error_string;                           // nvmlErrorString
  std::function<Return(unsigned*)> device_get_count;                         // nvmlDeviceGetCount_v2
  std::function<Return(unsigned, Device*)> device_get_handle_by_index;       // nvmlDeviceGetHandleByIndex_v2
  std::function<Return(Device, char*, unsigned)> device_get_name;            // nvmlDeviceGetName
  std::function<Return(Device, char*, unsigned)> device_get_uuid;            // nvmlDeviceGetUUID
  std::function<Return(Device, Memory*)> device_get_memory_info;             // nvmlDeviceGetMemoryInfo
  std::function<Return(Device, unsigned*, unsigned*)> device_get_mig_mode;   // nvmlDeviceGetMigMode
  std::function<Return(Device, unsigned*)> device_get_max_mig_device_count;  // nvmlDeviceGetMaxMigDeviceCount
  std::function<Return(Device, unsigned, Device*)> device_get_mig_device_handle_by_index;
  std::function<Return(Device, unsigned*)> device_get_gpu_instance_id;  // nvmlDeviceGetGpuInstanceId
  std::function<Return(Device, unsigned, GpuInstance*)> device_get_gpu_instance_by_id;
  std::function<Return(GpuInstance, GpuInstanceInfo*)> gpu_instance_get_info;  // nvmlGpuInstanceGetInfo
};

// libnvidia-ml, opened with dlopen and closed when destroyed.
class Library {
 public:
  // Unavailable when the library or one of the entry points is missing (no driver on this machine).
  // NotFound when the library cannot be loaded (no driver installed); Unavailable when it lacks a function.
  static Result<std::unique_ptr<Library>> Open(const std::string& path = "libnvidia-ml.so.1");
  ~Library();
  Library(const Library&) = delete;
  Library& operator=(const Library&) = delete;

  const Api& api() const { return api_; }

 private:
  Library() = default;
  void* handle_ = nullptr;
  Api api_;
};

// Enumerates the node's GPUs and MIG instances through `api` (init ... shutdown). For each GPU: name, UUID,
// memory and MIG mode; with MIG on, every MIG device index up to the maximum count (indexes that answer
// NOT_FOUND or INVALID_ARGUMENT are gaps and skipped), each device's UUID and GPU-instance id, and the
// instance's profile and placement. A GPU with MIG off (or not supported) is one slice of its full profile.
// Unavailable when NVML cannot start (no driver, no GPU); other errors name the GPU and call that failed.
Result<NodeTopology> Discover(const Api& api, std::string node_name);

}  // namespace fluidfaas::gpu::nvml
