#include "policy/answer_checker.h"

#include <algorithm>

namespace fluidfaas::policy {

std::string_view ToString(Reason reason) {
  switch (reason) {
    case Reason::kNoCapacity: return "no_capacity";
    case Reason::kDeadlineUnreachable: return "deadline_unreachable";
    case Reason::kUnknownFunction: return "unknown_function";
    case Reason::kOverloaded: return "overloaded";
    case Reason::kLoadFailed: return "load_failed";
    case Reason::kStageFailed: return "stage_failed";
    case Reason::kWorkerLost: return "worker_lost";
    case Reason::kSliceTaken: return "slice_taken";
    case Reason::kFunctionRemoved: return "function_removed";
  }
  return "?";
}

int64_t AnswerChecker::SliceBooks::Used() const {
  int64_t own = 0;
  int64_t reserve = 0;
  for (const auto* books : {&live, &releasing}) {
    for (const auto& [id, b] : *books) {
      own += b.own_mib;
      reserve = std::max(reserve, b.reserve_mib);
    }
  }
  return own + reserve;
}

AnswerChecker::AnswerChecker(const std::vector<ClusterSlice>& slices) {
  requests_.reserve(1 << 12);
  for (const ClusterSlice& s : slices) {
    slices_.push_back(SliceBooks{s.kind.profile != nullptr ? s.kind.profile->memory_mib : 0, {}, {}});
  }
}

void AnswerChecker::Violation(std::string what) {
  if (violations_++ == 0) first_ = std::move(what);
}

Status AnswerChecker::status() const {
  if (violations_ == 0) return Status::Ok();
  return Status::Internal("answer rule: " + first_ +
                          (violations_ > 1 ? " (and " + std::to_string(violations_ - 1) + " more)" : ""));
}

void AnswerChecker::OnRequest(const RequestEvent& request) {
  if (!requests_.emplace(request.id, Open{0, true}).second) {
    Violation("request " + std::to_string(request.id) + " arrived twice");
    return;
  }
  owned_.push_back(request.id);
}

void AnswerChecker::OnStageFinished(const StageFinished& stage) {
  auto inst = instances_.find(stage.instance);
  if (inst == instances_.end() || stage.requests.empty()) {
    Violation("stage finished on unknown instance " + std::to_string(stage.instance) + " or with no request");
    return;
  }
  for (RequestId r : stage.requests) {
    auto it = requests_.find(r);
    if (it == requests_.end() || it->second.instance != stage.instance) {
      Violation("request " + std::to_string(r) + " ran on instance " + std::to_string(stage.instance) +
                " without being routed there (or after it ended)");
      continue;
    }
    if (!stage.last) continue;
    requests_.erase(it);
    --inst->second.in_flight;
    ++completed_;
  }
}

void AnswerChecker::HandBack(InstanceId instance, RequestId r, const char* event) {
  auto it = requests_.find(r);
  if (it == requests_.end() || it->second.instance == 0 || (instance != 0 && it->second.instance != instance)) {
    Violation(std::string(event) + " handed back request " + std::to_string(r) + ", which was not in flight there");
    return;
  }
  --instances_[it->second.instance].in_flight;
  it->second = Open{0, false};
  owned_.push_back(r);
}

void AnswerChecker::OnStageFailed(const StageFailed& stage) {
  for (RequestId r : stage.requests) HandBack(stage.instance, r, "a failed stage");
}

void AnswerChecker::OnLoadFinished(const LoadFinished& load) {
  auto it = instances_.find(load.instance);
  if (it == instances_.end() || !it->second.placed) {
    Violation("load finished for instance " + std::to_string(load.instance) + ", which was not launched");
    return;
  }
  if (load.ok) return;
  for (const RequestEvent& r : load.stranded) HandBack(load.instance, r.id, "a failed load");
  if (it->second.in_flight != 0) {
    Violation("the failed load of instance " + std::to_string(load.instance) + " left requests unaccounted for");
  }
  it->second.must_retire = true;
  to_retire_.push_back(load.instance);
}

void AnswerChecker::OnSliceLost(const SliceLost& lost) {
  if (lost.slice >= slices_.size()) {
    Violation("lost slice " + std::to_string(lost.slice) + " is out of range");
    return;
  }
  for (const RequestEvent& r : lost.stranded) HandBack(0, r.id, "a lost slice");
  SliceBooks& books = slices_[lost.slice];
  std::vector<InstanceId> gone;
  for (const auto& [id, b] : books.live) gone.push_back(id);
  books.live.clear();
  books.releasing.clear();  // the process is gone: its memory is free, acknowledged or not
  for (InstanceId id : gone) {
    Inst& inst = instances_[id];
    if (inst.in_flight != 0) {
      Violation("slice " + std::to_string(lost.slice) + " was lost with requests of instance " + std::to_string(id) +
                " not handed back");
    }
    inst.must_retire = true;
    to_retire_.push_back(id);
  }
}

void AnswerChecker::OnReleased(const Released& released) {
  if (released.slice >= slices_.size()) {
    Violation("release on slice " + std::to_string(released.slice) + ", out of range");
    return;
  }
  // Already gone with a lost slice, or taken over by a launch that named it: nothing left to release.
  slices_[released.slice].releasing.erase(released.instance);
}

void AnswerChecker::OnDecision(const Decision& decision) {
  std::visit([this](const auto& d) { Check(d); }, decision);
}

void AnswerChecker::Check(const LaunchDecision& d) {
  Inst& inst = instances_[d.instance];
  if (inst.placed) Violation("instance " + std::to_string(d.instance) + " launched while already placed");
  if (d.stages.empty()) Violation("instance " + std::to_string(d.instance) + " launched with no stage");
  for (InstanceId prior : d.after_release) {
    bool pending = false;
    for (const StagePlacement& st : d.stages) {
      if (st.slice < slices_.size()) pending = slices_[st.slice].releasing.erase(prior) > 0 || pending;
    }
    if (!pending) {
      Violation("launch of instance " + std::to_string(d.instance) + " waits for instance " + std::to_string(prior) +
                ", which is releasing nothing on its slices");
    }
  }
  for (const StagePlacement& st : d.stages) {
    if (st.slice >= slices_.size()) {
      Violation("launch of instance " + std::to_string(d.instance) + " on slice " + std::to_string(st.slice) +
                ", out of range");
      return;
    }
    SliceBooks& books = slices_[st.slice];
    Booking& b = books.live[d.instance];
    b.own_mib += st.memory_mib - st.reserve_mib;
    b.reserve_mib = std::max(b.reserve_mib, st.reserve_mib);
    if (books.Used() > books.capacity_mib) {
      Violation("slice " + std::to_string(st.slice) + " booked to " + std::to_string(books.Used()) + " of " +
                std::to_string(books.capacity_mib) + " MiB by the launch of instance " + std::to_string(d.instance) +
                " (memory still in use or not yet released)");
    }
  }
  inst.placed = true;
  inst.must_retire = false;
  inst.stages = d.stages;
}

void AnswerChecker::Check(const RouteDecision& d) {
  auto it = requests_.find(d.request);
  if (it == requests_.end() || it->second.instance != 0 ||
      std::find(owned_.begin(), owned_.end(), d.request) == owned_.end()) {
    Violation("request " + std::to_string(d.request) + " routed while the scheduler did not own it");
    return;
  }
  auto inst = instances_.find(d.instance);
  if (inst == instances_.end() || !inst->second.placed || inst->second.must_retire) {
    Violation("request " + std::to_string(d.request) + " routed to instance " + std::to_string(d.instance) +
              ", which is not launched");
    return;
  }
  it->second.instance = d.instance;
  ++inst->second.in_flight;
}

void AnswerChecker::Check(const RejectDecision& d) {
  auto it = requests_.find(d.request);
  if (it == requests_.end() || it->second.instance != 0 || !it->second.fresh) {
    Violation("request " + std::to_string(d.request) + " rejected while it was not a new request the scheduler owned");
    return;
  }
  requests_.erase(it);
  ++rejected_;
}

void AnswerChecker::Check(const FailDecision& d) {
  auto it = requests_.find(d.request);
  if (it == requests_.end() || it->second.instance != 0 || it->second.fresh) {
    Violation("request " + std::to_string(d.request) + " failed while it was not handed back to the scheduler");
    return;
  }
  requests_.erase(it);
  ++failed_;
}

void AnswerChecker::Release(InstanceId id, Inst& inst, const char* what) {
  if (inst.in_flight != 0) {
    Violation(std::string(what) + " of instance " + std::to_string(id) + " with " + std::to_string(inst.in_flight) +
              " requests in flight");
  }
  for (const StagePlacement& st : inst.stages) {
    if (st.slice >= slices_.size()) continue;
    SliceBooks& books = slices_[st.slice];
    auto live = books.live.find(id);
    if (live == books.live.end()) continue;  // freed already (a lost slice)
    books.releasing[id] = live->second;
    books.live.erase(live);
  }
  inst.placed = false;
  inst.stages.clear();
}

void AnswerChecker::Check(const EvictDecision& d) {
  auto it = instances_.find(d.instance);
  if (it == instances_.end() || !it->second.placed) {
    Violation("evicted instance " + std::to_string(d.instance) + ", which is not placed");
    return;
  }
  Release(d.instance, it->second, "eviction");
}

void AnswerChecker::Check(const StateDecision&) {}

void AnswerChecker::Check(const MigrateDecision& d) {
  auto to = instances_.find(d.to);
  if (to == instances_.end() || !to->second.placed || !instances_.contains(d.from)) {
    Violation("migration from " + std::to_string(d.from) + " to " + std::to_string(d.to) +
              " names an unplaced instance");
  }
}

void AnswerChecker::Check(const RetireDecision& d) {
  auto it = instances_.find(d.instance);
  if (it == instances_.end()) {
    Violation("retired unknown instance " + std::to_string(d.instance));
    return;
  }
  Release(d.instance, it->second, "retirement");
  instances_.erase(it);
}

void AnswerChecker::EndCall() {
  for (RequestId r : owned_) {
    auto it = requests_.find(r);
    if (it != requests_.end() && it->second.instance == 0) {
      Violation("request " + std::to_string(r) + " was neither routed, rejected nor failed in the call that owned it");
      requests_.erase(it);  // report it once
    }
  }
  owned_.clear();
  for (InstanceId id : to_retire_) {
    auto it = instances_.find(id);
    if (it != instances_.end() && it->second.must_retire) {
      Violation("instance " + std::to_string(id) + " failed (load or slice lost) and was not retired in that call");
      it->second.must_retire = false;
    }
  }
  to_retire_.clear();
}

Status AnswerChecker::Finish() {
  if (!requests_.empty()) {
    Violation(std::to_string(requests_.size()) + " requests never ended (request " +
              std::to_string(requests_.begin()->first) + " among them)");
  }
  return status();
}

}  // namespace fluidfaas::policy
