// NVML discovery against a fake function table: a node that looks like what the driver reports.
#include "gpu/nvml.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>

namespace fluidfaas::gpu::nvml {

// The handles are opaque to discovery; the fake gives them a body.
struct nvmlDevice_st {
  int gpu;
  int mig_index;  // -1 for the parent GPU
};
struct nvmlGpuInstance_st {
  int gpu;
  unsigned id;
};

namespace {

struct FakeMigDevice {
  unsigned index;  // MIG device index (the index space may have gaps)
  unsigned gpu_instance_id;
  unsigned profile_id;
  unsigned start;
  std::string uuid;
};

struct FakeGpu {
  std::string name;
  std::string uuid;
  unsigned long long memory_bytes = 0;
  Return mig_mode_result = kSuccess;
  unsigned mig_mode = kMigEnabled;
  unsigned max_mig_devices = 7;
  std::map<unsigned, Return> index_errors;  // MIG device index -> error it answers
  std::vector<FakeMigDevice> migs;
};

// A fake NVML: its Api closes over the fake's state, and counts init/shutdown.
class FakeNvml {
 public:
  std::vector<FakeGpu> gpus;
  Return init_result = kSuccess;
  int inits = 0;
  int shutdowns = 0;

  Api MakeApi() {
    Api a;
    a.init = [this] {
      ++inits;
      return init_result;
    };
    a.shutdown = [this] {
      ++shutdowns;
      return kSuccess;
    };
    a.error_string = [](Return r) { return r == kErrorDriverNotLoaded ? "Driver Not Loaded" : "Fake Error"; };
    a.device_get_count = [this](unsigned* n) {
      *n = static_cast<unsigned>(gpus.size());
      return kSuccess;
    };
    a.device_get_handle_by_index = [this](unsigned i, Device* d) {
      if (i >= gpus.size()) return kErrorInvalidArgument;
      *d = Handle(static_cast<int>(i), -1);
      return kSuccess;
    };
    a.device_get_name = [this](Device d, char* buf, unsigned len) { return Copy(gpus[d->gpu].name, buf, len); };
    a.device_get_uuid = [this](Device d, char* buf, unsigned len) {
      return Copy(d->mig_index < 0 ? gpus[d->gpu].uuid : Mig(d).uuid, buf, len);
    };
    a.device_get_memory_info = [this](Device d, Memory* m) {
      m->total = gpus[d->gpu].memory_bytes;
      return kSuccess;
    };
    a.device_get_mig_mode = [this](Device d, unsigned* current, unsigned* pending) {
      *current = *pending = gpus[d->gpu].mig_mode;
      return gpus[d->gpu].mig_mode_result;
    };
    a.device_get_max_mig_device_count = [this](Device d, unsigned* n) {
      *n = gpus[d->gpu].max_mig_devices;
      return kSuccess;
    };
    a.device_get_mig_device_handle_by_index = [this](Device d, unsigned i, Device* out) {
      const FakeGpu& g = gpus[d->gpu];
      if (auto e = g.index_errors.find(i); e != g.index_errors.end()) return e->second;
      for (size_t k = 0; k < g.migs.size(); ++k) {
        if (g.migs[k].index == i) {
          *out = Handle(d->gpu, static_cast<int>(k));
          return kSuccess;
        }
      }
      return kErrorNotFound;
    };
    a.device_get_gpu_instance_id = [this](Device d, unsigned* id) {
      if (d->mig_index < 0) return kErrorInvalidArgument;
      *id = Mig(d).gpu_instance_id;
      return kSuccess;
    };
    a.device_get_gpu_instance_by_id = [this](Device d, unsigned id, GpuInstance* gi) {
      instances_.push_back(std::make_unique<nvmlGpuInstance_st>(nvmlGpuInstance_st{d->gpu, id}));
      *gi = instances_.back().get();
      return kSuccess;
    };
    a.gpu_instance_get_info = [this](GpuInstance gi, GpuInstanceInfo* info) {
      for (const FakeMigDevice& m : gpus[gi->gpu].migs) {
        if (m.gpu_instance_id == gi->id) {
          info->id = gi->id;
          info->profile_id = m.profile_id;
          info->placement = GpuInstancePlacement{m.start, 0};
          return kSuccess;
        }
      }
      return kErrorNotFound;
    };
    return a;
  }

 private:
  static Return Copy(const std::string& s, char* buf, unsigned len) {
    if (s.size() + 1 > len) return 7;  // NVML_ERROR_INSUFFICIENT_SIZE
    std::memcpy(buf, s.c_str(), s.size() + 1);
    return kSuccess;
  }
  Device Handle(int gpu, int mig) {
    handles_.push_back(std::make_unique<nvmlDevice_st>(nvmlDevice_st{gpu, mig}));
    return handles_.back().get();
  }
  const FakeMigDevice& Mig(Device d) const { return gpus[d->gpu].migs[d->mig_index]; }

  std::vector<std::unique_ptr<nvmlDevice_st>> handles_;
  std::vector<std::unique_ptr<nvmlGpuInstance_st>> instances_;
};

constexpr unsigned long long kGiB = 1ull << 30;

// GPU 0: A100-80GB in MIG mode with 4g@0 (GI 1), 2g@4 (GI 5), 1g@6 (GI 13), reported out of placement order
// and with gaps in the MIG index space. GPU 1: H100 with MIG disabled.
FakeNvml TwoGpuNode() {
  FakeNvml nvml;
  FakeGpu a100;
  a100.name = "NVIDIA A100-SXM4-80GB";
  a100.uuid = "GPU-aaaa";
  a100.memory_bytes = 80 * kGiB;
  a100.index_errors = {{1, kErrorNotFound}, {3, kErrorInvalidArgument}};
  a100.migs = {{0, 13, 19, 6, "MIG-one"}, {2, 1, 5, 0, "MIG-four"}, {4, 5, 14, 4, "MIG-two"}};
  FakeGpu h100;
  h100.name = "NVIDIA H100 80GB HBM3";
  h100.uuid = "GPU-hhhh";
  h100.memory_bytes = 80 * kGiB;
  h100.mig_mode = 0;
  nvml.gpus = {a100, h100};
  return nvml;
}

TEST(NvmlDiscoveryTest, EnumeratesGpusAndMigDevicesSkippingGaps) {
  FakeNvml nvml = TwoGpuNode();
  Result<NodeTopology> node = Discover(nvml.MakeApi(), "gpu-node");
  ASSERT_TRUE(node.ok()) << node.status().ToString();
  EXPECT_FALSE(node->emulated);
  EXPECT_EQ(node->source, "nvml");
  ASSERT_EQ(node->gpus.size(), 2u);
  EXPECT_EQ(node->gpus[0].type->model, GpuModel::kA100_80GB);
  EXPECT_EQ(node->gpus[0].uuid, "GPU-aaaa");
  EXPECT_TRUE(node->gpus[0].mig_enabled);
  EXPECT_EQ(node->gpus[0].layout.ToString(), "4g.40gb@0+2g.20gb@4+1g.10gb@6");
  EXPECT_EQ(node->gpus[1].type->model, GpuModel::kH100_80GB);
  EXPECT_FALSE(node->gpus[1].mig_enabled);

  ASSERT_EQ(node->slices.size(), 4u);
  EXPECT_EQ(node->slices[0].id, "0:4g.40gb@0");
  EXPECT_EQ(node->slices[0].uuid, "MIG-four");
  EXPECT_EQ(node->slices[0].gpu_instance_id, 1);
  EXPECT_EQ(node->slices[1].id, "0:2g.20gb@4");
  EXPECT_EQ(node->slices[1].uuid, "MIG-two");
  EXPECT_EQ(node->slices[1].gpu_instance_id, 5);
  EXPECT_EQ(node->slices[2].id, "0:1g.10gb@6");
  EXPECT_EQ(node->slices[2].uuid, "MIG-one");
  EXPECT_EQ(node->slices[2].gpu_instance_id, 13);
  // MIG disabled: one full slice, addressed by the GPU's own UUID.
  EXPECT_EQ(node->slices[3].id, "1:7g.80gb@0");
  EXPECT_EQ(node->slices[3].uuid, "GPU-hhhh");
  EXPECT_EQ(node->slices[3].sms, 132);

  EXPECT_EQ(nvml.inits, 1);
  EXPECT_EQ(nvml.shutdowns, 1);
}

TEST(NvmlDiscoveryTest, MigModeNotSupportedMeansWholeGpu) {
  FakeNvml nvml = TwoGpuNode();
  nvml.gpus[0].mig_mode_result = kErrorNotSupported;
  Result<NodeTopology> node = Discover(nvml.MakeApi(), "n");
  ASSERT_TRUE(node.ok()) << node.status().ToString();
  EXPECT_EQ(node->gpus[0].layout.ToString(), "7g.80gb@0");
}

TEST(NvmlDiscoveryTest, InitFailureIsUnavailableWithoutShutdown) {
  FakeNvml nvml = TwoGpuNode();
  nvml.init_result = kErrorDriverNotLoaded;
  Result<NodeTopology> node = Discover(nvml.MakeApi(), "n");
  EXPECT_EQ(node.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(node.status().message(), "nvmlInit failed: Driver Not Loaded (9)");
  EXPECT_EQ(nvml.shutdowns, 0);
}

TEST(NvmlDiscoveryTest, OtherMigIndexErrorsAreReportedWithWhere) {
  FakeNvml nvml = TwoGpuNode();
  nvml.gpus[0].index_errors[5] = kErrorNoPermission;
  Result<NodeTopology> node = Discover(nvml.MakeApi(), "n");
  ASSERT_FALSE(node.ok());
  EXPECT_EQ(node.status().message(), "GPU 0: MIG device 5: nvmlDeviceGetMigDeviceHandleByIndex failed: Fake Error (4)");
  EXPECT_EQ(nvml.shutdowns, 1);  // the session still ends
}

TEST(NvmlDiscoveryTest, UnsupportedGpuIsAClearError) {
  FakeNvml nvml = TwoGpuNode();
  nvml.gpus[1].name = "Tesla V100-SXM2-32GB";
  Result<NodeTopology> node = Discover(nvml.MakeApi(), "n");
  EXPECT_EQ(node.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(node.status().message().find("Tesla V100"), std::string::npos);
  EXPECT_NE(node.status().message().find("To add it"), std::string::npos) << node.status().message();
}

TEST(NvmlDiscoveryTest, UnknownProfileIdIsAClearError) {
  FakeNvml nvml = TwoGpuNode();
  nvml.gpus[0].migs[0].profile_id = 42;
  Result<NodeTopology> node = Discover(nvml.MakeApi(), "n");
  ASSERT_FALSE(node.ok());
  EXPECT_EQ(node.status().message(),
            "GPU 0: MIG device 0: GPU-instance profile id 42 is not a known profile of a100-80gb");
}

TEST(NvmlDiscoveryTest, InconsistentDriverLayoutIsRejected) {
  FakeNvml nvml = TwoGpuNode();
  nvml.gpus[0].migs[2].start = 2;  // 2g@2 overlaps 4g@0
  Result<NodeTopology> node = Discover(nvml.MakeApi(), "n");
  ASSERT_FALSE(node.ok());
  EXPECT_NE(node.status().message().find("invalid layout: 2g.20gb@2 overlaps 4g.40gb@0"), std::string::npos)
      << node.status().message();
}

TEST(NvmlDiscoveryTest, NoGpuIsUnavailable) {
  FakeNvml nvml;
  EXPECT_EQ(Discover(nvml.MakeApi(), "n").status().code(), StatusCode::kUnavailable);
}

TEST(NvmlLibraryTest, MissingLibraryIsNotFound) {
  Result<std::unique_ptr<Library>> lib = Library::Open("libnvidia-ml-does-not-exist.so.1");
  ASSERT_FALSE(lib.ok());
  EXPECT_EQ(lib.status().code(), StatusCode::kNotFound);  // absent, not failing: ResolveNode emulates quietly
  EXPECT_NE(lib.status().message().find("libnvidia-ml-does-not-exist.so.1"), std::string::npos);
}

TEST(NvmlLibraryTest, LibraryWithoutTheEntryPointsIsUnavailable) {
  // libm is on every machine and has none of NVML's symbols.
  Result<std::unique_ptr<Library>> lib = Library::Open("libm.so.6");
  ASSERT_FALSE(lib.ok());
  EXPECT_EQ(lib.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(lib.status().message().find("lacks nvmlInit_v2"), std::string::npos) << lib.status().message();
}

}  // namespace
}  // namespace fluidfaas::gpu::nvml
