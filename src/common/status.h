// Status: the outcome of an operation that can fail, as a cheap value.
//
// Every call in FluidFaaS that can fail returns a Status (or a Result<T>, see result.h); no exception crosses
// a module boundary. An OK status holds no message and costs one enum. Build errors with the named factories
// (Status::InvalidArgument("...")) and add where they happened with WithContext("parsing layout").
//
// Thread safety: a Status is a plain value; distinct objects may be used from distinct threads.
#pragma once

#include <string>
#include <string_view>
#include <utility>

namespace fluidfaas {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // the caller's input is malformed or out of range
  kNotFound,            // a named thing (file, model, slice) does not exist
  kAlreadyExists,       // a thing to create is there already
  kFailedPrecondition,  // the system is not in a state where the call makes sense
  kResourceExhausted,   // not enough memory, slices, queue space
  kUnavailable,         // a dependency (NVML, a worker) cannot be reached now
  kDeadlineExceeded,    // the deadline passed before the work finished
  kIoError,             // the operating system refused a read or write
  kUnimplemented,       // the feature does not exist (yet) for this input
  kInternal,            // an invariant broke: a bug in FluidFaaS
};

// "InvalidArgument", "NotFound", ...
std::string_view ToString(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string message) { return {StatusCode::kInvalidArgument, std::move(message)}; }
  static Status NotFound(std::string message) { return {StatusCode::kNotFound, std::move(message)}; }
  static Status AlreadyExists(std::string message) { return {StatusCode::kAlreadyExists, std::move(message)}; }
  static Status FailedPrecondition(std::string message) {
    return {StatusCode::kFailedPrecondition, std::move(message)};
  }
  static Status ResourceExhausted(std::string message) { return {StatusCode::kResourceExhausted, std::move(message)}; }
  static Status Unavailable(std::string message) { return {StatusCode::kUnavailable, std::move(message)}; }
  static Status DeadlineExceeded(std::string message) { return {StatusCode::kDeadlineExceeded, std::move(message)}; }
  static Status IoError(std::string message) { return {StatusCode::kIoError, std::move(message)}; }
  static Status Unimplemented(std::string message) { return {StatusCode::kUnimplemented, std::move(message)}; }
  static Status Internal(std::string message) { return {StatusCode::kInternal, std::move(message)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "OK", or "InvalidArgument: <message>".
  std::string ToString() const;

  // The same status with "<context>: " before its message; OK stays OK.
  Status WithContext(std::string_view context) const&;
  Status WithContext(std::string_view context) &&;

  friend bool operator==(const Status& a, const Status& b) = default;

 private:
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// The status of a Status (itself); result.h adds the overload for Result<T>.
inline const Status& AsStatus(const Status& status) {
  return status;
}

}  // namespace fluidfaas

// FF_RETURN_IF_ERROR(expr): returns the status of `expr` (a Status or a Result) from the enclosing function
// when it is not OK.
#define FF_RETURN_IF_ERROR(expr)                                  \
  do {                                                            \
    ::fluidfaas::Status ff_status_ = ::fluidfaas::AsStatus(expr); \
    if (!ff_status_.ok()) return ff_status_;                      \
  } while (false)
