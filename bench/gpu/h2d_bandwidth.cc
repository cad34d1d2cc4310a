// Host-to-device copy bandwidth, pinned and pageable, against the 25 GB/s (PCIe 4.0 x16) the load-cost model
// assumes for a warm reload (src/model/load_cost.h). Run by scripts/gpu-check.sh on a machine with an NVIDIA GPU.
// The CUDA driver is opened at run time (dlopen of libcuda.so.1, its stable driver API: any driver that has the
// GPU works, and nothing links libcuda), so it builds and fails cleanly everywhere else.
// Prints one JSON object: {"device", "bytes", "pinned_gbs", "pageable_gbs"} (medians), or exits 1 with the reason.
// Usage: h2d_bandwidth [MIB 1..16384, default 256] [TRIALS 1..1000, default 10]
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

using CUresult = int;
using CUdevice = int;
using CUcontext = void*;
using CUdeviceptr = unsigned long long;  // NOLINT(google-runtime-int): the driver API's type

struct Driver {
  CUresult (*Init)(unsigned) = nullptr;
  CUresult (*DeviceGet)(CUdevice*, int) = nullptr;
  CUresult (*DeviceGetName)(char*, int, CUdevice) = nullptr;
  CUresult (*PrimaryCtxRetain)(CUcontext*, CUdevice) = nullptr;
  CUresult (*CtxSetCurrent)(CUcontext) = nullptr;
  CUresult (*MemAlloc)(CUdeviceptr*, size_t) = nullptr;
  CUresult (*MemAllocHost)(void**, size_t) = nullptr;
  CUresult (*MemcpyHtoD)(CUdeviceptr, const void*, size_t) = nullptr;
  CUresult (*CtxSynchronize)() = nullptr;
  CUresult (*GetErrorString)(CUresult, const char**) = nullptr;
};

template <typename F>
bool Load(void* lib, const char* name, F* out) {
  *out = reinterpret_cast<F>(dlsym(lib, name));
  if (*out == nullptr) std::fprintf(stderr, "h2d_bandwidth: libcuda.so.1 has no %s\n", name);
  return *out != nullptr;
}

bool Ok(const Driver& d, CUresult r, const char* what) {
  if (r == 0) return true;
  const char* text = "unknown error";
  if (d.GetErrorString != nullptr) d.GetErrorString(r, &text);
  std::fprintf(stderr, "h2d_bandwidth: %s: %s (%d)\n", what, text, r);
  return false;
}

// Median GB/s of `trials` synchronous copies of `bytes` (after one warm-up).
double Measure(const Driver& d, CUdeviceptr device, const void* host, size_t bytes, int trials) {
  std::vector<double> gbs;
  for (int t = 0; t <= trials; ++t) {
    const auto t0 = std::chrono::steady_clock::now();
    if (!Ok(d, d.MemcpyHtoD(device, host, bytes), "cuMemcpyHtoD") || !Ok(d, d.CtxSynchronize(), "sync")) return 0;
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (t > 0) gbs.push_back(static_cast<double>(bytes) / s / 1e9);
  }
  std::sort(gbs.begin(), gbs.end());
  return gbs[gbs.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const long mib = argc > 1 ? std::strtol(argv[1], nullptr, 10) : 256;    // NOLINT(google-runtime-int)
  const long trials = argc > 2 ? std::strtol(argv[2], nullptr, 10) : 10;  // NOLINT(google-runtime-int)
  if (mib < 1 || mib > 16384 || trials < 1 || trials > 1000) {
    std::fprintf(stderr, "usage: h2d_bandwidth [MIB 1..16384] [TRIALS 1..1000]\n");
    return 2;
  }
  void* lib = dlopen("libcuda.so.1", RTLD_NOW);
  if (lib == nullptr) {
    std::fprintf(stderr, "h2d_bandwidth: no CUDA driver: %s\n", dlerror());
    return 1;
  }
  Driver d;
  if (!Load(lib, "cuInit", &d.Init) || !Load(lib, "cuDeviceGet", &d.DeviceGet) ||
      !Load(lib, "cuDeviceGetName", &d.DeviceGetName) || !Load(lib, "cuDevicePrimaryCtxRetain", &d.PrimaryCtxRetain) ||
      !Load(lib, "cuCtxSetCurrent", &d.CtxSetCurrent) || !Load(lib, "cuMemAlloc_v2", &d.MemAlloc) ||
      !Load(lib, "cuMemAllocHost_v2", &d.MemAllocHost) || !Load(lib, "cuMemcpyHtoD_v2", &d.MemcpyHtoD) ||
      !Load(lib, "cuCtxSynchronize", &d.CtxSynchronize) || !Load(lib, "cuGetErrorString", &d.GetErrorString)) {
    return 1;
  }
  const size_t bytes = static_cast<size_t>(mib) << 20;
  CUdevice dev = 0;
  CUcontext ctx = nullptr;
  char name[256] = {};
  CUdeviceptr device = 0;
  void* pinned = nullptr;
  if (!Ok(d, d.Init(0), "cuInit") || !Ok(d, d.DeviceGet(&dev, 0), "cuDeviceGet") ||
      !Ok(d, d.DeviceGetName(name, sizeof name - 1, dev), "cuDeviceGetName") ||
      !Ok(d, d.PrimaryCtxRetain(&ctx, dev), "cuDevicePrimaryCtxRetain") ||
      !Ok(d, d.CtxSetCurrent(ctx), "cuCtxSetCurrent") || !Ok(d, d.MemAlloc(&device, bytes), "cuMemAlloc") ||
      !Ok(d, d.MemAllocHost(&pinned, bytes), "cuMemAllocHost")) {
    return 1;
  }
  std::memset(pinned, 1, bytes);
  std::vector<char> pageable(bytes, 1);
  const double pinned_gbs = Measure(d, device, pinned, bytes, static_cast<int>(trials));
  const double pageable_gbs = Measure(d, device, pageable.data(), bytes, static_cast<int>(trials));
  if (pinned_gbs == 0 || pageable_gbs == 0) return 1;
  std::printf("{\"device\": \"%s\", \"bytes\": %zu, \"pinned_gbs\": %.2f, \"pageable_gbs\": %.2f}\n", name, bytes,
              pinned_gbs, pageable_gbs);
  return 0;  // the process's end frees the device and host memory
}
