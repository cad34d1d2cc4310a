// The node's state for /v1/node, taken on the control thread.
#include "cluster/report.h"
#include "daemon/controller_impl.h"

namespace fluidfaas::daemon {

void Controller::Impl::Snapshot() {
  nlohmann::json slices = nlohmann::json::array();
  for (size_t s = 0; s < cluster.size(); ++s) {
    slices.push_back({{"id", cluster[s].id},
                      {"gpu", cluster[s].gpu},
                      {"profile", cluster[s].kind.profile->name},
                      {"uuid", options.node.slices[s].uuid},
                      {"residents", nlohmann::json::array()}});
  }
  nlohmann::json insts = nlohmann::json::array();
  for (const auto& [id, inst] : carrier->instances()) {
    nlohmann::json stages = nlohmann::json::array();
    for (const auto& st : inst.stages) {
      stages.push_back({{"slice", cluster[st.slice].id},
                        {"blocks", {st.first_block, st.last_block}},
                        {"memory_mib", st.memory_mib}});
      slices[st.slice]["residents"].push_back(id);
    }
    insts.push_back({{"id", id},
                     {"function", FunctionName(inst.function)},
                     {"state", policy::ToString(inst.state)},
                     {"loaded", inst.loaded},
                     {"queued", inst.queue.size()},
                     {"batches_in_flight", inst.in_flight},
                     {"pipeline", inst.stages.size() > 1},
                     {"stages", stages}});
  }
  // Generative instances (generation.cc): their slices are taken from the scheduler's while they run.
  nlohmann::json gen_insts = nlohmann::json::array();
  for (const carrier::GenInstanceView& v : gen->Instances()) {
    nlohmann::json on = nlohmann::json::array();
    for (size_t s : v.slices) {
      on.push_back(cluster[s].id);
      slices[s]["residents"].push_back("generative:" + gen->spec(v.function).name);
    }
    gen_insts.push_back({{"function", gen->spec(v.function).name},
                         {"slices", on},
                         {"pipeline", v.slices.size() > 1},
                         {"ready", v.ready},
                         {"draining", v.draining},
                         {"sequences", v.sequences}});
  }
  const runtime::RuntimeStats rs = runtime->Stats();
  nlohmann::json totals;
  {
    const carrier::Totals& t = carrier->totals();
    totals = {{"launches", t.launches.load()},
              {"pipelines", t.pipelines.load()},
              {"migrations", t.migrations.load()},
              {"evictions", t.evictions.load()}};
  }
  nlohmann::json node = {{"name", options.node.name},
                         {"emulated", options.node.emulated},
                         {"policy", options.policy},
                         {"slo_margin", options.slo_margin},
                         {"cold_start_wait_s", ToSeconds(options.cold_start_wait)},
                         {"late_margin", LateMargin()},
                         {"slices", slices},
                         {"instances", insts},
                         {"generative_instances", gen_insts},
                         {"host_memory", {{"warm_bytes", rs.warm_bytes}, {"warm_copies", rs.warm_copies}}},
                         {"totals", totals},
                         {"workers", {{"alive", rs.workers_alive}, {"restarts", rs.worker_restarts}}}};
  MutexLock lock(mu);
  node_snapshot = std::move(node);
}

nlohmann::json Controller::NodeJson() const {
  // Taken on the control thread, which owns the books it reads.
  return impl_->RunOnControl<nlohmann::json>([this] {
    impl_->Snapshot();
    MutexLock lock(impl_->mu);
    return impl_->node_snapshot;
  });
}

cluster::NodeReport Controller::ClusterReport() const {
  // The carrier's report (carrier::Carrier::MakeReport, the simulator's too) in names the gateway knows, with what
  // only /v1/cluster shows: each instance's state and queue, recent arrivals, host memory.
  return impl_->RunOnControl<cluster::NodeReport>([this] {
    const Impl& impl = *impl_;
    const TimePoint now = impl.clock->Now();
    const carrier::Carrier::Report r = impl.carrier->MakeReport(now);
    cluster::NodeReport out;
    for (const auto& [slice, free] : r.free) {
      const policy::ClusterSlice& s = impl.cluster[slice];
      out.slices.push_back(
          cluster::ReportedSlice{s.id, std::string(s.kind.profile->name), std::string(s.kind.gpu->name), free});
    }
    // Every deployed function, with nothing on the node or not: the gateway learns what this node serves.
    std::map<FunctionId, cluster::ReportedFunction> by_id;
    {
      MutexLock lock(impl.mu);
      for (const auto& [name, fn] : impl.functions) {
        if (fn.removed) continue;
        cluster::ReportedFunction& f = by_id[fn.id];
        f.name = name;
        f.model = fn.info->directory.empty() ? fn.info->model : "";
        f.slo_ms = fn.info->slo_ms;
      }
      out.open = static_cast<int64_t>(impl.open);
      out.draining = impl.draining;
    }
    // Generative functions (generation.cc), after the single-pass ones: each ready instance can take a sequence
    // at once (continuous batching), so it counts as hot with no wait.
    std::vector<cluster::ReportedFunction> generative;
    {
      MutexLock lock(impl.mu);
      for (const auto& [name, g] : impl.gen_functions) {
        if (g.removed) continue;
        cluster::ReportedFunction f{.name = name, .model = g.info->model, .slo_ms = g.info->slo_ms};
        uint64_t n = 0;
        for (const carrier::GenInstanceView& v : impl.gen->Instances()) {
          ++n;
          if (v.function != g.index) continue;
          if (v.ready && !v.draining) ++f.hot;
          cluster::ReportedInstance ri{
              (uint64_t{1} << 40) + n, v.ready ? "generating" : "loading", {}, static_cast<int64_t>(v.sequences)};
          for (size_t sl : v.slices) ri.slices.push_back(impl.cluster[sl].id);
          f.instances.push_back(std::move(ri));
        }
        generative.push_back(std::move(f));
      }
    }
    for (const policy::NodeFunction& nf : r.functions) {
      const auto it = by_id.find(nf.function);
      if (it == by_id.end()) continue;  // removed
      it->second.hot = nf.hot;
      it->second.finish_ms = nf.finish_ms;
      it->second.warm = nf.warm;
    }
    for (const auto& [id, inst] : impl.carrier->instances()) {
      const auto it = by_id.find(inst.function);
      if (it == by_id.end()) continue;
      cluster::ReportedInstance ri{
          id, std::string(policy::ToString(inst.state)), {}, static_cast<int64_t>(inst.queue.size())};
      for (const policy::StagePlacement& st : inst.stages) ri.slices.push_back(impl.cluster[st.slice].id);
      if (!ri.slices.empty()) it->second.instances.push_back(std::move(ri));
    }
    for (auto& [id, f] : by_id) {
      if (const auto rate = impl.arrival_rates.find(id); rate != impl.arrival_rates.end()) {
        f.rate_per_s = rate->second.PerSecond(now);
      }
      out.functions.push_back(std::move(f));
    }
    for (cluster::ReportedFunction& f : generative) out.functions.push_back(std::move(f));
    const int64_t budget = impl.options.host_memory_bytes.value_or(runtime::DefaultHostMemoryBytes());
    out.host_free_mib = std::max<int64_t>(0, budget - impl.runtime->Stats().warm_bytes) >> 20;
    return out;
  });
}

}  // namespace fluidfaas::daemon
