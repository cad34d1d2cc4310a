// Deploying a function: its cost tables, off the control thread, then installed on it.
#include "daemon/controller_impl.h"

namespace fluidfaas::daemon {

namespace {

// NotFound for a name that is no model of the zoo.
Status CheckZooModel(const std::string& model) {
  const auto zoo = model::ZooModels();
  if (std::none_of(zoo.begin(), zoo.end(), [&](const model::ZooEntry& e) { return e.name == model; })) {
    return Status::NotFound("no zoo model '" + Printable(model) + "' (fluidfaas zoo list)");
  }
  return Status::Ok();
}

}  // namespace

Status Controller::Impl::CheckNotDeployed(const std::string& name) const {
  MutexLock lock(mu);
  if (auto it = functions.find(name); it != functions.end() && !it->second.removed) {
    return Status::AlreadyExists("function '" + name + "' is deployed");
  }
  if (auto it = gen_functions.find(name); it != gen_functions.end() && !it->second.removed) {
    return Status::AlreadyExists("function '" + name + "' is deployed");
  }
  return Status::Ok();
}

// Control thread: a generative function into the generation node (generation.cc): a zoo model, or a repository
// directory already inspected (`directory`).
Status Controller::Impl::DeployGenerative(const FunctionConfig& in, const InspectedGenerative* directory) {
  FunctionConfig c = in;
  if (c.model.empty() == (directory == nullptr)) {
    return Status::InvalidArgument("a generative function is a zoo model or a repository directory (one of the two)");
  }
  if (c.name.empty()) c.name = directory != nullptr ? directory->name : c.model;
  FF_RETURN_IF_ERROR(CheckName("function name", c.name));
  FF_RETURN_IF_ERROR(CheckRange("time_scale", c.time_scale, 0.0, 1000.0, /*open_low=*/true));
  if (c.slo_ms != 0) FF_RETURN_IF_ERROR(CheckRange("slo_ms", c.slo_ms, 0.0, 1e7, /*open_low=*/true));
  if (c.tpot_ms != 0) FF_RETURN_IF_ERROR(CheckRange("tpot_ms", c.tpot_ms, 0.0, 1e6, /*open_low=*/true));
  FF_RETURN_IF_ERROR(CheckNotDeployed(c.name));
  if (directory == nullptr) FF_RETURN_IF_ERROR(CheckZooModel(c.model));
  FF_ASSIGN_OR_RETURN(GenFunction f, AddGenerative(c, directory));
  MutexLock lock(mu);
  gen_functions[c.name] = std::move(f);  // a removed one of the name is replaced: its sequences run out in the node
  return Status::Ok();
}

Result<Controller::Impl::Prepared> Controller::Impl::Prepare(const FunctionConfig& in) const {
  Prepared p;
  FunctionConfig& c = p.config = in;
  if (c.model.empty() == c.directory.empty()) {
    return Status::InvalidArgument("a function is a zoo model or a repository directory (one of the two)");
  }
  if (!c.directory.empty()) FF_RETURN_IF_ERROR(CheckName("directory", c.directory));
  if (c.name.empty()) c.name = c.directory.empty() ? c.model : c.directory;
  FF_RETURN_IF_ERROR(CheckName("function name", c.name));
  FF_RETURN_IF_ERROR(CheckRange("time_scale", c.time_scale, 0.0, 1000.0, /*open_low=*/true));
  if (c.slo_ms != 0) FF_RETURN_IF_ERROR(CheckRange("slo_ms", c.slo_ms, 0.0, 1e7, /*open_low=*/true));
  if (c.max_batch != 0) FF_RETURN_IF_ERROR(CheckRange("max_batch", int64_t{c.max_batch}, 1, kMaxBatch));
  FF_RETURN_IF_ERROR(CheckNotDeployed(c.name));  // before a second's inspection; Install checks again

  model::FunctionSpec spec;
  std::optional<model::FunctionProfile> profile;
  if (!c.directory.empty()) {
    if (!options.repository) {
      return Status::FailedPrecondition("the node has no function repository (fluidfaas serve --repository DIR)");
    }
    FF_ASSIGN_OR_RETURN(InspectedFunction found, options.repository->Inspect(c.directory));
    spec = std::move(found.spec);
    profile = std::move(found.profile);
    p.dir = std::move(found.dir);
    p.block_inputs = std::move(found.block_inputs);
    c.time_scale = 1;  // real blocks run at their own speed
  } else {
    FF_RETURN_IF_ERROR(CheckZooModel(c.model));
    FF_ASSIGN_OR_RETURN(spec, model::BuildZooModel(c.model));
  }
  if (c.max_batch != 0) spec.max_batch = c.max_batch;
  const double manifest_slo = p.dir.empty() ? 0 : spec.slo_ms;
  auto shared = std::make_shared<const model::FunctionSpec>(std::move(spec));
  const model::ModelledBlockTimes modelled(*shared, latency);
  std::optional<model::ProfiledBlockTimes> profiled;
  if (profile) profiled.emplace(std::move(*profile), modelled);
  const model::BlockTimes& times = profiled ? static_cast<const model::BlockTimes&>(*profiled) : modelled;
  FF_ASSIGN_OR_RETURN(p.served, policy::ServeFunction(0, shared, times, latency, *mps_shares, kDefaultSloScale));
  if (c.slo_ms > 0) {
    p.served.slo_ms = c.slo_ms;
  } else if (manifest_slo > 0) {
    p.served.slo_ms = manifest_slo;
  }
  return p;
}

Status Controller::Impl::Install(Prepared p) {
  const FunctionConfig& c = p.config;
  FF_RETURN_IF_ERROR(CheckNotDeployed(c.name));
  const FunctionId id = next_function++;
  p.served.id = id;
  FF_RETURN_IF_ERROR(scheduler->Deploy(p.served));
  const model::FunctionSpec& spec = *p.served.spec;
  Function f;
  f.id = id;
  f.config = c;
  f.dir = p.dir;
  f.block_inputs = std::move(p.block_inputs);
  f.spec = p.served.spec;
  f.costs = p.served.costs;
  f.batched = p.served.batched;
  f.mps = p.served.mps;
  carrier->AddFunction(id, carrier::CarriedFunction{f.costs.get(), f.batched.get(), f.mps.get(), c.time_scale});
  f.input_bytes = static_cast<uint64_t>(model::BytesPerElement(spec.dtype));
  for (int64_t d : spec.input_shape) f.input_bytes *= static_cast<uint64_t>(d);
  FunctionInfo info{c.name,
                    c.model,
                    c.directory,
                    p.served.slo_ms,
                    p.served.batched->max_batch(),
                    c.time_scale,
                    spec.dtype == model::DType::kFp16 ? "FP16" : "FP32",
                    spec.input_shape,
                    {}};
  info.output_shape =
      p.dir.empty() ? std::vector<int64_t>{spec.blocks.back().out_elems} : spec.output_shape;  // zoo: flattened
  f.info = std::make_shared<const FunctionInfo>(std::move(info));
  MutexLock lock(mu);
  if (auto old = functions.find(c.name); old != functions.end()) {
    // A removed function deployed again under its name: its old id keeps its own record (its instances drain).
    removed_functions.push_back(std::make_unique<Function>(std::move(old->second)));
    by_id[removed_functions.back()->id] = removed_functions.back().get();
    functions.erase(old);
  }
  Function& stored = functions[c.name] = std::move(f);
  by_id.push_back(&stored);
  return Status::Ok();
}

// A config that names a generative repository directory: the directory, inspected (about a second: never on the
// control thread); none for any other config.
Result<std::optional<InspectedGenerative>> Controller::Impl::GenerativeDirectory(const FunctionConfig& c) const {
  if (c.directory.empty() || !options.repository || !CheckName("directory", c.directory).ok() ||
      !options.repository->IsGenerative(c.directory)) {
    if (c.generate && !c.directory.empty()) {
      return Status::InvalidArgument("'" + Printable(c.directory) +
                                     "' is not a generative function directory (manifest kind: generative)");
    }
    return std::optional<InspectedGenerative>();
  }
  if (!c.model.empty()) {
    return Status::InvalidArgument("a function is a zoo model or a repository directory (one of the two)");
  }
  FF_RETURN_IF_ERROR(CheckNotDeployed(c.name.empty() ? c.directory : c.name));
  FF_ASSIGN_OR_RETURN(InspectedGenerative d, options.repository->InspectGenerative(c.directory));
  return std::optional<InspectedGenerative>(std::move(d));
}

Status Controller::Deploy(const FunctionConfig& config) {
  FF_ASSIGN_OR_RETURN(std::optional<InspectedGenerative> directory, impl_->GenerativeDirectory(config));
  if (directory) {
    return impl_->RunOnControl<Status>(
        [this, config, d = std::make_shared<InspectedGenerative>(std::move(*directory))] {
          return impl_->DeployGenerative(config, d.get());
        });
  }
  if (config.generate) {
    return impl_->RunOnControl<Status>([this, config] { return impl_->DeployGenerative(config, nullptr); });
  }
  auto prepared = impl_->Prepare(config);
  if (!prepared.ok()) return prepared.status();
  return impl_->RunOnControl<Status>(
      [this, p = std::make_shared<Impl::Prepared>(std::move(*prepared))] { return impl_->Install(std::move(*p)); });
}

std::vector<std::string> Controller::RepositoryFunctions() const {
  return impl_->options.repository ? impl_->options.repository->List() : std::vector<std::string>{};
}

Status Controller::Remove(const std::string& name) {
  return impl_->RunOnControl<Status>([this, name]() -> Status {
    Impl& impl = *impl_;
    FunctionId id = 0;
    {
      MutexLock lock(impl.mu);
      if (auto g = impl.gen_functions.find(name); g != impl.gen_functions.end() && !g->second.removed) {
        g->second.removed = true;  // new requests are refused; open ones finish (the node releases when idle)
        return Status::Ok();
      }
      auto it = impl.functions.find(name);
      if (it == impl.functions.end() || it->second.removed) return Status::NotFound("no function '" + name + "'");
      it->second.removed = true;
      id = it->second.id;
    }
    Status s;
    impl.Apply([&](auto& out) { s = impl.scheduler->Remove(id, impl.clock->Now(), out); });
    return s;
  });
}

}  // namespace fluidfaas::daemon
