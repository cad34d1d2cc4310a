// BaselineScheduler: what the three baselines (ESG, INFless, exclusive keep-alive) do alike, so each of them
// holds only its paper's rules (configuration, dispatch, scaling): the function and instance books, answering
// every request (scheduler.h's rule) on every failure path, and the slice books with acknowledged releases.
//
// `Inst` is the baseline's instance record, with at least: FunctionId function; size_t slice; bool loading;
// int outstanding. `Fn` its function record, with at least: ServedFunction served; std::vector<InstanceId>
// instances; bool removed.
//
// Failure paths, the same for every baseline: a failed stage fails its requests; a failed load retires the
// instance and routes its requests again (through the baseline's own Admit) or fails them; a lost worker or a
// taken slice retires the instances on it and does the same. A removed function's instances retire once idle.
//
// Thread safety: none (see Scheduler).
#pragma once

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "policy/scheduler.h"
#include "policy/slice_books.h"

namespace fluidfaas::policy {

template <typename Inst, typename Fn>
class BaselineScheduler : public Scheduler {
 public:
  void OnRequest(const RequestEvent& request, TimePoint now, std::vector<Decision>& out) final {
    auto fit = functions_.find(request.function);
    if (fit == functions_.end() || fit->second.removed) {
      out.push_back(
          RejectDecision{request.id, Reason::kUnknownFunction, "unknown function " + std::to_string(request.function)});
      return;
    }
    if (std::optional<Refusal> no = Admit(fit->second, request, now, out)) {
      out.push_back(RejectDecision{request.id, no->code, std::move(no->detail)});
    }
  }

  void OnStageFinished(const StageFinished& stage, TimePoint now, std::vector<Decision>& out) final {
    auto it = instances_.find(stage.instance);
    if (it == instances_.end()) return;
    slices_.BatchDone(it->second.slice, stage.instance, stage.stage, static_cast<int>(stage.requests.size()),
                      stage.finished);
    Measured(it->second, stage);
    if (stage.last) Ended(stage.instance, static_cast<int>(stage.requests.size()), now, out);
  }

  void OnStageFailed(const StageFailed& stage, TimePoint now, std::vector<Decision>& out) final {
    for (RequestId r : stage.requests) {
      out.push_back(FailDecision{r, Reason::kStageFailed, std::string(stage.detail)});
    }
    auto it = instances_.find(stage.instance);
    if (it == instances_.end()) return;
    slices_.BatchDone(it->second.slice, stage.instance, stage.stage, static_cast<int>(stage.requests.size()), now);
    Ended(stage.instance, static_cast<int>(stage.requests.size()), now, out);
  }

  void OnLoadFinished(const LoadFinished& load, TimePoint now, std::vector<Decision>& out) final {
    auto it = instances_.find(load.instance);
    if (it == instances_.end()) return;
    if (load.ok) {
      it->second.loading = false;
      if (functions_.at(it->second.function).removed && it->second.outstanding == 0) Retire(load.instance, out);
      return;
    }
    it->second.outstanding = 0;  // handed back with the event
    Retire(load.instance, out);
    Reroute(load.stranded, Reason::kLoadFailed, load.detail, now, out);
  }

  void OnSliceLost(const SliceLost& lost, TimePoint now, std::vector<Decision>& out) final {
    if (lost.slice >= slices_.size()) return;
    if (lost.reason == Reason::kSliceTaken) slices_.SetAvailable(lost.slice, false);
    for (InstanceId id : slices_.Lose(lost.slice)) {
      auto it = instances_.find(id);
      if (it == instances_.end()) continue;
      it->second.outstanding = 0;
      Retire(id, out);
    }
    SliceGone(lost.slice);
    Reroute(lost.stranded, lost.reason, lost.detail, now, out);
  }

  void OnReleased(const Released& released, TimePoint, std::vector<Decision>&) final {
    slices_.Acknowledge(released.slice, released.instance);
    ReleaseDone(released);
  }

  void OnSliceFreed(size_t slice, TimePoint, std::vector<Decision>&) final {
    if (slice < slices_.size()) slices_.SetAvailable(slice, true);
  }

  Status Deploy(ServedFunction function) final {
    FF_RETURN_IF_ERROR(CheckServedFunction(function, needs_batched_, needs_mps_));
    auto it = functions_.find(function.id);
    if (it != functions_.end() && !it->second.removed) {
      return Status::AlreadyExists("function id " + std::to_string(function.id) + " is deployed already");
    }
    if (it != functions_.end() && !it->second.instances.empty()) {
      return Status::FailedPrecondition("function id " + std::to_string(function.id) + " is still being removed");
    }
    if (it != functions_.end()) functions_.erase(it);
    const FunctionId id = function.id;
    functions_.emplace(id, MakeFn(std::move(function)));
    return Status::Ok();
  }

  Status Remove(FunctionId function, TimePoint, std::vector<Decision>& out) final {
    auto it = functions_.find(function);
    if (it == functions_.end() || it->second.removed) {
      return Status::NotFound("function id " + std::to_string(function) + " is not deployed");
    }
    it->second.removed = true;
    for (InstanceId id : std::vector<InstanceId>(it->second.instances)) {
      const Inst& inst = instances_.at(id);
      if (!inst.loading && inst.outstanding == 0) Retire(id, out);
    }
    return Status::Ok();
  }

  Status Invariants() const final {
    FF_RETURN_IF_ERROR(slices_.Check());
    for (const auto& [id, inst] : instances_) {
      const std::vector<InstanceId>& r = slices_.residents(inst.slice);
      if (std::find(r.begin(), r.end(), id) == r.end()) {
        return Status::Internal(std::string(name()) + ": instance " + std::to_string(id) + " is not booked on slice " +
                                slices_.info(inst.slice).id);
      }
    }
    return Status::Ok();
  }

 protected:
  struct Refusal {
    Reason code = Reason::kNoCapacity;
    std::string detail;
  };

  BaselineScheduler(std::vector<ClusterSlice> slices, bool needs_batched, bool needs_mps)
      : slices_(std::move(slices)), needs_batched_(needs_batched), needs_mps_(needs_mps) {}

  // Routes `request` of `fn` (scaling up by the baseline's rules), or says why it cannot.
  virtual std::optional<Refusal> Admit(Fn& fn, const RequestEvent& request, TimePoint now,
                                       std::vector<Decision>& out) = 0;
  virtual Fn MakeFn(ServedFunction&& served) {
    Fn fn;
    fn.served = std::move(served);
    return fn;
  }
  // Hooks: a batch measured; an instance retired (its slice memory is releasing); a release acknowledged; a
  // slice lost (its instances are retired already).
  virtual void Measured(Inst&, const StageFinished&) {}
  virtual void Retired(InstanceId, const Inst&) {}
  virtual void ReleaseDone(const Released&) {}
  virtual void SliceGone(size_t) {}

  // Books a new instance on its slice and in its function's list.
  Inst& Add(InstanceId id, Inst inst, Fn& fn, int64_t own_mib, int64_t reserve_mib) {
    slices_.Book(inst.slice, id, own_mib, reserve_mib);
    fn.instances.push_back(id);
    return instances_.emplace(id, std::move(inst)).first->second;
  }

  void Retire(InstanceId id, std::vector<Decision>& out) {
    auto it = instances_.find(id);
    if (it == instances_.end()) return;
    slices_.Unbook(it->second.slice, id);
    Retired(id, it->second);
    Fn& fn = functions_.at(it->second.function);
    fn.instances.erase(std::find(fn.instances.begin(), fn.instances.end(), id));
    instances_.erase(it);
    if (fn.removed && fn.instances.empty()) functions_.erase(fn.served.id);
    out.push_back(RetireDecision{id});
  }

  SliceBooks slices_;
  std::map<FunctionId, Fn> functions_;
  std::map<InstanceId, Inst> instances_;
  InstanceId next_instance_ = 1;

 private:
  void Ended(InstanceId id, int n, TimePoint, std::vector<Decision>& out) {
    Inst& inst = instances_.at(id);
    inst.outstanding = std::max(0, inst.outstanding - n);
    if (inst.outstanding == 0 && functions_.at(inst.function).removed) Retire(id, out);
  }

  void Reroute(std::span<const RequestEvent> stranded, Reason code, std::string_view detail, TimePoint now,
               std::vector<Decision>& out) {
    for (const RequestEvent& r : stranded) {
      auto fit = functions_.find(r.function);
      if (fit == functions_.end() || fit->second.removed) {
        out.push_back(FailDecision{r.id, Reason::kFunctionRemoved, "its function was removed"});
      } else if (r.deadline <= now || Admit(fit->second, r, now, out)) {
        out.push_back(FailDecision{r.id, code, std::string(detail)});
      }
    }
  }

  bool needs_batched_;
  bool needs_mps_;
};

}  // namespace fluidfaas::policy
