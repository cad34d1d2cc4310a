// The control channel between the node and a worker process: a Unix SOCK_SEQPACKET socket carrying one JSON
// object per message (at most kMaxControlBytes), plus up to kMaxControlFds file descriptors (SCM_RIGHTS: how a
// worker receives its rings). Tensors never travel here; they go through rings (ring.h).
//
// Messages, node to worker:
//   {"op":"load", "instance", "stage", "spec": StageSpec (executor.h), "from_warm"}   fds: [input ring, output ring]
//   {"op":"evict", "instance", "stage", "keep_warm"}    drop the device copy (and the host copy unless keep_warm)
//   {"op":"ping", "seq"}                                {"op":"stop"}
// worker to node:
//   {"op":"ready", "pid", "version", "device", "executors"}
//   {"op":"loaded", "instance", "stage", "ok", "detail", "from_warm", "load_ms", "device_bytes", "host_bytes"}
//   {"op":"released", "instance", "stage", "host_bytes"}   the device copy is gone (host_bytes: the warm copy kept)
//   {"op":"stage_failed", "instance", "stage", "batch", "detail"}   the batch's requests will not complete
//   {"op":"pong", "seq"}
// A batch run is a slot in the stage's input ring; its completion is a slot in the output ring.
//
// Thread safety: Send and Receive on one socket may run on different threads (each message is one datagram).
#pragma once

#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "common/result.h"
#include "common/time.h"
#include "runtime/unique_fd.h"

namespace fluidfaas::runtime {

inline constexpr size_t kMaxControlBytes = size_t{64} * 1024;
inline constexpr size_t kMaxControlFds = 4;
inline constexpr int kControlVersion = 1;

struct ControlMessage {  // NOLINT(bugprone-exception-escape): json's implicit members
  nlohmann::json body;
  std::vector<UniqueFd> fds;
};

// A connected pair (node end, worker end), close-on-exec.
Result<std::pair<UniqueFd, UniqueFd>> ControlSocketPair();

// Sends one message. Unavailable when the peer is gone.
Status SendControl(int socket, const nlohmann::json& body, std::span<const int> fds = {});

// Waits up to `timeout` for one message. DeadlineExceeded on timeout; Unavailable when the peer hung up;
// InvalidArgument for a message that is not a JSON object with a string "op" (the message is dropped).
Result<ControlMessage> ReceiveControl(int socket, Duration timeout);

// `field` when it is there with the type of `fallback`, else `fallback` (never throws, whatever the peer sent).
template <typename T>
T ValueOr(const nlohmann::json& body, const char* field, T fallback) {
  const auto it = body.find(field);
  if (it == body.end()) return fallback;
  if constexpr (std::is_same_v<T, bool>) {
    return it->is_boolean() ? it->get<bool>() : fallback;
  } else if constexpr (std::is_same_v<T, std::string>) {
    return it->is_string() ? it->get<std::string>() : fallback;
  } else if constexpr (std::is_floating_point_v<T>) {
    return it->is_number() ? it->get<T>() : fallback;
  } else if constexpr (std::is_unsigned_v<T>) {
    return it->is_number_unsigned() ? it->get<T>() : fallback;
  } else {
    return it->is_number_integer() ? it->get<T>() : fallback;
  }
}

// Field readers that name the field and its range in their errors.
Result<uint64_t> GetU64(const nlohmann::json& body, const char* field);
Result<std::string> GetString(const nlohmann::json& body, const char* field);

}  // namespace fluidfaas::runtime
