#include "policy/factory.h"

#include "common/strings.h"
#include "policy/esg_scheduler.h"
#include "policy/exclusive_scheduler.h"
#include "policy/fluidfaas_scheduler.h"
#include "policy/infless_scheduler.h"

namespace fluidfaas::policy {
namespace {

template <typename T>
Result<std::unique_ptr<Scheduler>> Upcast(Result<std::unique_ptr<T>> made) {
  if (!made.ok()) return made.status();
  return std::unique_ptr<Scheduler>(std::move(made).value());
}

}  // namespace

const std::vector<std::string>& PolicyNames() {
  static const std::vector<std::string> kNames = {"fluidfaas", "esg", "infless", "exclusive"};
  return kNames;
}

bool UsesWholeGpus(std::string_view policy) {
  return policy == "infless";
}

Result<std::unique_ptr<Scheduler>> MakeScheduler(std::string_view policy, std::vector<ClusterSlice> cluster,
                                                 std::vector<ServedFunction> functions) {
  if (policy == "fluidfaas") return Upcast(FluidFaaSScheduler::Create(std::move(cluster), std::move(functions)));
  if (policy == "esg") return Upcast(EsgScheduler::Create(std::move(cluster), std::move(functions)));
  if (policy == "infless") return Upcast(InflessScheduler::Create(std::move(cluster), std::move(functions)));
  if (policy == "exclusive") return Upcast(ExclusiveScheduler::Create(std::move(cluster), std::move(functions)));
  return Status::InvalidArgument("unknown policy '" + std::string(policy) +
                                 "' (policies: " + Join(PolicyNames(), ", ") + ")");
}

}  // namespace fluidfaas::policy
