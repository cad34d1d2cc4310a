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
  // The carrier's report (carrier::Carrier::MakeReport, the simulator's too) in names the gateway knows.
  return impl_->RunOnControl<cluster::NodeReport>([this] {
    const Impl& impl = *impl_;
    const carrier::Carrier::Report r = impl.carrier->MakeReport(impl.clock->Now());
    cluster::NodeReport out;
    for (const auto& [slice, free] : r.free) {
      const policy::ClusterSlice& s = impl.cluster[slice];
      out.slices.push_back(
          cluster::ReportedSlice{s.id, std::string(s.kind.profile->name), std::string(s.kind.gpu->name), free});
    }
    for (const policy::NodeFunction& f : r.functions) {
      const Impl::Function* fn = impl.FindFunction(f.function);
      if (fn == nullptr || fn->removed) continue;
      out.functions.push_back(cluster::ReportedFunction{fn->info.name, fn->info.directory.empty() ? fn->info.model : "",
                                                        fn->info.slo_ms, f.hot, f.finish_ms, f.warm});
    }
    // Deployed functions with nothing on the node are listed too: the gateway learns what this node serves.
    MutexLock lock(impl.mu);
    for (const auto& [name, fn] : impl.functions) {
      if (fn.removed) continue;
      const std::string_view wanted = name;
      const bool listed = std::any_of(out.functions.begin(), out.functions.end(),
                                      [wanted](const cluster::ReportedFunction& rf) { return rf.name == wanted; });
      if (!listed) {
        out.functions.push_back(
            cluster::ReportedFunction{name, fn.info.directory.empty() ? fn.info.model : "", fn.info.slo_ms, 0, 0, 0});
      }
    }
    out.open = static_cast<int64_t>(impl.open);
    out.draining = impl.draining;
    return out;
  });
}

}  // namespace fluidfaas::daemon
