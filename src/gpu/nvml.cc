#include "gpu/nvml.h"

#include <dlfcn.h>

#include <vector>

namespace fluidfaas::gpu::nvml {
namespace {

template <typename Fn>
bool Bind(void* handle, const char* symbol, std::function<Fn>& slot, std::string& missing) {
  void* address = dlsym(handle, symbol);
  if (address == nullptr) {
    if (!missing.empty()) missing += ", ";
    missing += symbol;
    return false;
  }
  slot = reinterpret_cast<Fn*>(address);
  return true;
}

class Session {
 public:
  explicit Session(const Api& api) : api_(api) {}
  ~Session() {
    if (started_) api_.shutdown();
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  Status Start() {
    const Return r = api_.init();
    if (r != kSuccess) return Status::Unavailable("nvmlInit failed: " + Describe(r));
    started_ = true;
    return Status::Ok();
  }

  std::string Describe(Return r) const {
    const char* text = api_.error_string ? api_.error_string(r) : nullptr;
    return (text != nullptr ? std::string(text) : "error") + " (" + std::to_string(r) + ")";
  }

  Status Check(Return r, const std::string& what) const {
    if (r == kSuccess) return Status::Ok();
    return Status::Unavailable(what + " failed: " + Describe(r));
  }

 private:
  const Api& api_;
  bool started_ = false;
};

Result<GpuInfo> DiscoverGpu(const Api& api, const Session& session, unsigned index) {
  const std::string where = "GPU " + std::to_string(index) + ": ";
  Device device = nullptr;
  FF_RETURN_IF_ERROR(
      session.Check(api.device_get_handle_by_index(index, &device), where + "nvmlDeviceGetHandleByIndex"));
  char name[kDeviceNameBuffer] = {};
  char uuid[kUuidBuffer] = {};
  Memory memory{};
  FF_RETURN_IF_ERROR(session.Check(api.device_get_name(device, name, sizeof name), where + "nvmlDeviceGetName"));
  FF_RETURN_IF_ERROR(session.Check(api.device_get_uuid(device, uuid, sizeof uuid), where + "nvmlDeviceGetUUID"));
  FF_RETURN_IF_ERROR(session.Check(api.device_get_memory_info(device, &memory), where + "nvmlDeviceGetMemoryInfo"));

  GpuInfo gpu;
  gpu.index = static_cast<int>(index);
  gpu.product = name;
  gpu.uuid = uuid;
  FF_ASSIGN_OR_RETURN(gpu.type, GpuTypeFromProductName(name, static_cast<int64_t>(memory.total >> 20)));

  unsigned current = 0;
  unsigned pending = 0;
  const Return mode = api.device_get_mig_mode(device, &current, &pending);
  if (mode != kSuccess && mode != kErrorNotSupported) {
    return session.Check(mode, where + "nvmlDeviceGetMigMode");
  }
  gpu.mig_enabled = mode == kSuccess && current == kMigEnabled;
  if (!gpu.mig_enabled) {
    FF_ASSIGN_OR_RETURN(gpu.layout, MakeLayout(*gpu.type, {PlacedSlice{&gpu.type->FullProfile(), 0}}));
    return gpu;
  }

  unsigned max_devices = 0;
  FF_RETURN_IF_ERROR(session.Check(api.device_get_max_mig_device_count(device, &max_devices),
                                   where + "nvmlDeviceGetMaxMigDeviceCount"));
  struct Found {
    PlacedSlice slice;
    int gpu_instance_id;
    std::string uuid;
  };
  std::vector<Found> found;
  for (unsigned i = 0; i < max_devices; ++i) {
    const std::string mig_where = where + "MIG device " + std::to_string(i) + ": ";
    Device mig = nullptr;
    const Return r = api.device_get_mig_device_handle_by_index(device, i, &mig);
    if (r == kErrorNotFound || r == kErrorInvalidArgument) continue;  // a gap in the index space
    FF_RETURN_IF_ERROR(session.Check(r, mig_where + "nvmlDeviceGetMigDeviceHandleByIndex"));
    char mig_uuid[kUuidBuffer] = {};
    unsigned gi_id = 0;
    GpuInstance gi = nullptr;
    GpuInstanceInfo info{};
    FF_RETURN_IF_ERROR(
        session.Check(api.device_get_uuid(mig, mig_uuid, sizeof mig_uuid), mig_where + "nvmlDeviceGetUUID"));
    FF_RETURN_IF_ERROR(
        session.Check(api.device_get_gpu_instance_id(mig, &gi_id), mig_where + "nvmlDeviceGetGpuInstanceId"));
    FF_RETURN_IF_ERROR(session.Check(api.device_get_gpu_instance_by_id(device, gi_id, &gi),
                                     mig_where + "nvmlDeviceGetGpuInstanceById"));
    FF_RETURN_IF_ERROR(session.Check(api.gpu_instance_get_info(gi, &info), mig_where + "nvmlGpuInstanceGetInfo"));
    const MigProfile* profile = gpu.type->FindProfileById(static_cast<int>(info.profile_id));
    if (profile == nullptr) {
      return Status::Unimplemented(mig_where + "GPU-instance profile id " + std::to_string(info.profile_id) +
                                   " is not a known profile of " + std::string(gpu.type->name));
    }
    found.push_back(
        Found{PlacedSlice{profile, static_cast<int>(info.placement.start)}, static_cast<int>(gi_id), mig_uuid});
  }

  std::vector<PlacedSlice> placed;
  placed.reserve(found.size());
  for (const Found& f : found) placed.push_back(f.slice);
  Result<Layout> layout = MakeLayout(*gpu.type, placed);
  if (!layout.ok()) return layout.status().WithContext(where + "the driver reports an invalid layout");
  gpu.layout = std::move(layout).value();
  // MakeLayout sorts by start; keep ids and UUIDs in the same order.
  for (const PlacedSlice& s : gpu.layout.slices()) {
    for (const Found& f : found) {
      if (f.slice == s) {
        gpu.gpu_instance_ids.push_back(f.gpu_instance_id);
        gpu.slice_uuids.push_back(f.uuid);
      }
    }
  }
  return gpu;
}

}  // namespace

Result<std::unique_ptr<Library>> Library::Open(const std::string& path) {
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();  // NotFound: no NVML here at all (ResolveNode tells absence from failure)
    return Status::NotFound(why != nullptr ? why : "cannot load " + path);
  }
  std::unique_ptr<Library> lib(new Library());
  lib->handle_ = handle;
  Api& a = lib->api_;
  std::string missing;
  Bind(handle, "nvmlInit_v2", a.init, missing);
  Bind(handle, "nvmlShutdown", a.shutdown, missing);
  Bind(handle, "nvmlErrorString", a.error_string, missing);
  Bind(handle, "nvmlDeviceGetCount_v2", a.device_get_count, missing);
  Bind(handle, "nvmlDeviceGetHandleByIndex_v2", a.device_get_handle_by_index, missing);
  Bind(handle, "nvmlDeviceGetName", a.device_get_name, missing);
  Bind(handle, "nvmlDeviceGetUUID", a.device_get_uuid, missing);
  Bind(handle, "nvmlDeviceGetMemoryInfo", a.device_get_memory_info, missing);
  Bind(handle, "nvmlDeviceGetMigMode", a.device_get_mig_mode, missing);
  Bind(handle, "nvmlDeviceGetMaxMigDeviceCount", a.device_get_max_mig_device_count, missing);
  Bind(handle, "nvmlDeviceGetMigDeviceHandleByIndex", a.device_get_mig_device_handle_by_index, missing);
  Bind(handle, "nvmlDeviceGetGpuInstanceId", a.device_get_gpu_instance_id, missing);
  Bind(handle, "nvmlDeviceGetGpuInstanceById", a.device_get_gpu_instance_by_id, missing);
  Bind(handle, "nvmlGpuInstanceGetInfo", a.gpu_instance_get_info, missing);
  if (!missing.empty()) return Status::Unavailable(path + " lacks " + missing + " (driver too old for MIG?)");
  return lib;
}

Library::~Library() {
  if (handle_ != nullptr) dlclose(handle_);
}

Result<NodeTopology> Discover(const Api& api, std::string node_name) {
  Session session(api);
  FF_RETURN_IF_ERROR(session.Start());
  unsigned count = 0;
  FF_RETURN_IF_ERROR(session.Check(api.device_get_count(&count), "nvmlDeviceGetCount"));
  if (count == 0) return Status::Unavailable("NVML reports no GPU");
  std::vector<GpuInfo> gpus;
  for (unsigned i = 0; i < count; ++i) {
    FF_ASSIGN_OR_RETURN(GpuInfo gpu, DiscoverGpu(api, session, i));
    gpus.push_back(std::move(gpu));
  }
  return MakeNodeTopology(std::move(node_name), /*emulated=*/false, "nvml", std::move(gpus));
}

}  // namespace fluidfaas::gpu::nvml
