// Result<T>: a T, or the Status that says why there is none.
//
// Return it from calls that produce a value and can fail. Read the value only after checking ok(); reading the
// value of a failed Result is a bug and aborts. Propagate with FF_ASSIGN_OR_RETURN(auto x, Call()) or, for a
// Status-only step, FF_RETURN_IF_ERROR(Call()) (both accept a Status or a Result).
//
// Thread safety: a plain value, like Status.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <type_traits>
#include <utility>
#include <variant>

#include "common/status.h"

namespace fluidfaas {

template <typename T>
class [[nodiscard]] Result {
  static_assert(!std::is_same_v<std::decay_t<T>, Status>, "Result<Status> makes no sense: return Status");

 public:
  // A value (implicit, so `return value;` works).
  Result(T value) : state_(std::in_place_index<1>, std::move(value)) {}  // NOLINT(google-explicit-constructor)
  // A failure (implicit, so `return Status::NotFound(...)` works). REQUIRES: !status.ok().
  Result(Status status) : state_(std::in_place_index<0>, std::move(status)) {  // NOLINT(google-explicit-constructor)
    if (std::get<0>(state_).ok()) {
      state_.template emplace<0>(Status::Internal("Result built from an OK status without a value"));
    }
  }

  bool ok() const { return state_.index() == 1; }

  // OK when there is a value.
  Status status() const { return ok() ? Status::Ok() : std::get<0>(state_); }

  const T& value() const& { return CheckedValue(); }
  T& value() & { return const_cast<T&>(CheckedValue()); }
  T&& value() && { return std::move(const_cast<T&>(CheckedValue())); }

  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

  T value_or(T fallback) const& { return ok() ? std::get<1>(state_) : std::move(fallback); }

 private:
  const T& CheckedValue() const {
    if (!ok()) {
      std::fprintf(stderr, "fluidfaas: value() of a failed Result: %s\n", std::get<0>(state_).ToString().c_str());
      std::abort();
    }
    return std::get<1>(state_);
  }

  std::variant<Status, T> state_;
};

template <typename T>
Status AsStatus(const Result<T>& result) {
  return result.status();
}

}  // namespace fluidfaas

#define FF_CONCAT_INNER_(a, b) a##b
#define FF_CONCAT_(a, b) FF_CONCAT_INNER_(a, b)

// FF_ASSIGN_OR_RETURN(lhs, expr): evaluates expr (a Result); returns its status when it failed, else moves its
// value into lhs, which may be a declaration (`auto layout`) or an existing variable. It expands to several
// statements: never use it as the body of an unbraced if or loop.
#define FF_ASSIGN_OR_RETURN(lhs, expr) FF_ASSIGN_OR_RETURN_IMPL_(FF_CONCAT_(ff_result_, __COUNTER__), lhs, expr)
// NOLINTBEGIN(bugprone-macro-parentheses): lhs may be a declaration, which parentheses would break.
#define FF_ASSIGN_OR_RETURN_IMPL_(result, lhs, expr) \
  auto result = (expr);                              \
  if (!result.ok()) return result.status();          \
  lhs = std::move(result).value()
// NOLINTEND(bugprone-macro-parentheses)
