#include "daemon/http_api.h"

#include <httplib.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>
#include <vector>

#include "common/limits.h"
#include "model/zoo.h"

namespace fluidfaas::daemon {
namespace {

using nlohmann::json;

void Reply(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void Error(httplib::Response& res, int status, const std::string& message, const std::string& code = "") {
  json body = {{"error", message}};
  if (!code.empty()) body["code"] = code;
  Reply(res, status, body);
}

// The HTTP status of a failed deploy, load or delete.
int StatusFor(const Status& st) {
  switch (st.code()) {
    case StatusCode::kAlreadyExists: return 409;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kUnavailable: return 503;
    default: return 400;
  }
}

// IEEE half <-> float, for FP16 tensors in JSON (round to nearest even; no NaN payloads kept).
uint16_t ToHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000;
  const int32_t exp = static_cast<int32_t>((x >> 23) & 0xff) - 127 + 15;
  uint32_t mant = x & 0x7fffff;
  if (exp >= 31) return static_cast<uint16_t>(sign | 0x7c00);
  if (exp <= 0) {
    if (exp < -10) return static_cast<uint16_t>(sign);
    mant |= 0x800000;
    const uint32_t shift = static_cast<uint32_t>(14 - exp);
    uint32_t half = mant >> shift;
    if ((mant >> (shift - 1)) & 1) ++half;
    return static_cast<uint16_t>(sign | half);
  }
  uint32_t half = sign | (static_cast<uint32_t>(exp) << 10) | (mant >> 13);
  if (mant & 0x1000) ++half;
  return static_cast<uint16_t>(half);
}

float FromHalf(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  const uint32_t mant = h & 0x3ff;
  float f = 0;
  if (exp == 0) {
    f = std::ldexp(static_cast<float>(mant), -24);
  } else if (exp == 31) {
    f = mant != 0 ? NAN : INFINITY;
  } else {
    f = std::ldexp(static_cast<float>(mant | 0x400), static_cast<int>(exp) - 25);
  }
  uint32_t x;
  std::memcpy(&x, &f, 4);
  x |= sign;
  std::memcpy(&f, &x, 4);
  return f;
}

std::string ShapeText(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

json ModelMetadata(const FunctionInfo& f) {
  std::vector<int64_t> in = {-1};
  in.insert(in.end(), f.input_shape.begin(), f.input_shape.end());
  std::vector<int64_t> out = {-1};
  out.insert(out.end(), f.output_shape.begin(), f.output_shape.end());
  json params = {{"slo_ms", f.slo_ms}, {"max_batch", f.max_batch}, {"time_scale", f.time_scale}};
  if (f.directory.empty()) {
    params["zoo_model"] = f.model;
  } else {
    params["directory"] = f.directory;
  }
  return {{"name", f.name},
          {"versions", {"1"}},
          {"platform", f.directory.empty() ? "fluidfaas_emulated" : "pytorch_torchscript"},
          {"parameters", params},
          {"inputs", {{{"name", "input"}, {"datatype", f.datatype}, {"shape", in}}}},
          {"outputs", {{{"name", "output"}, {"datatype", f.datatype}, {"shape", out}}}}};
}

// Parses the one input of an infer body into bytes of the function's datatype. The error names the input.
// `binary`: the bytes after the JSON header (binary tensor extension), for an input with binary_data_size.
Result<std::vector<std::byte>> ParseInput(const json& body, const FunctionInfo& f, std::string_view binary) {
  if (!body.is_object()) return Status::InvalidArgument("the body is not a JSON object");
  const auto inputs = body.find("inputs");
  if (inputs == body.end() || !inputs->is_array() || inputs->size() != 1) {
    return Status::InvalidArgument("\"inputs\" must be an array of one tensor");
  }
  const json& in = (*inputs)[0];
  if (!in.is_object()) return Status::InvalidArgument("inputs[0] is not an object");
  const std::string name = in.contains("name") && in["name"].is_string() ? in["name"].get<std::string>() : "";
  const std::string who = "input '" + name + "'";
  if (name.empty()) return Status::InvalidArgument("inputs[0] has no \"name\"");
  if (!in.contains("datatype") || !in["datatype"].is_string() || in["datatype"].get<std::string>() != f.datatype) {
    return Status::InvalidArgument(who + ": datatype must be " + f.datatype);
  }
  std::vector<int64_t> want = {1};
  want.insert(want.end(), f.input_shape.begin(), f.input_shape.end());
  std::vector<int64_t> shape;
  if (in.contains("shape") && in["shape"].is_array()) {
    for (const json& d : in["shape"]) {
      if (!d.is_number_integer()) return Status::InvalidArgument(who + ": shape must hold integers");
      shape.push_back(d.get<int64_t>());
    }
  }
  if (shape != want) {
    return Status::InvalidArgument(who + ": shape " + ShapeText(shape) + ", expected " + ShapeText(want) +
                                   " (one sample per request: the node batches)");
  }
  int64_t elems = 1;
  for (int64_t d : f.input_shape) elems *= d;
  const bool half = f.datatype == "FP16";
  const size_t want_bytes = static_cast<size_t>(elems) * (half ? 2 : 4);
  if (in.contains("parameters") && in["parameters"].is_object() && in["parameters"].contains("binary_data_size")) {
    const json& size = in["parameters"]["binary_data_size"];
    if (!size.is_number_unsigned() || size.get<uint64_t>() != want_bytes || binary.size() != want_bytes) {
      return Status::InvalidArgument(who + ": binary_data_size must be " + std::to_string(want_bytes) +
                                     " and match the bytes after the JSON header (" + std::to_string(binary.size()) +
                                     ")");
    }
    std::vector<std::byte> bytes(want_bytes);
    std::memcpy(bytes.data(), binary.data(), want_bytes);
    for (size_t i = 0; i < static_cast<size_t>(elems); ++i) {  // numbers from outside are finite
      float x = 0;
      if (half) {
        uint16_t h;
        std::memcpy(&h, bytes.data() + i * 2, 2);
        x = FromHalf(h);
      } else {
        std::memcpy(&x, bytes.data() + i * 4, 4);
      }
      if (!std::isfinite(x)) return Status::InvalidArgument(who + ": element " + std::to_string(i) + " is not finite");
    }
    return bytes;
  }
  if (!binary.empty()) return Status::InvalidArgument("binary data after the header, but no input asks for it");
  const auto data = in.find("data");
  if (data == in.end() || !data->is_array() || static_cast<int64_t>(data->size()) != elems) {
    return Status::InvalidArgument(who + ": \"data\" must be a flat array of " + std::to_string(elems) + " numbers");
  }
  std::vector<std::byte> bytes(want_bytes);
  size_t i = 0;
  for (const json& v : *data) {
    if (!v.is_number()) return Status::InvalidArgument(who + ": data[" + std::to_string(i) + "] is not a number");
    const double d = v.get<double>();
    if (!std::isfinite(d) || std::abs(d) > 3.4e38) {
      return Status::InvalidArgument(who + ": data[" + std::to_string(i) + "] is not a finite float");
    }
    if (half) {
      const uint16_t h = ToHalf(static_cast<float>(d));
      std::memcpy(bytes.data() + i * 2, &h, 2);
    } else {
      const auto x = static_cast<float>(d);
      std::memcpy(bytes.data() + i * 4, &x, 4);
    }
    ++i;
  }
  return bytes;
}

std::vector<int64_t> OutputShape(const FunctionInfo& f) {
  std::vector<int64_t> shape = {1};
  shape.insert(shape.end(), f.output_shape.begin(), f.output_shape.end());
  return shape;
}

// The output's values as a JSON array's text, each the shortest decimal that reads back as the same float
// (std::to_chars); a value that is not finite is written as 0. Written directly: building a json array of the values
// and printing it took a third of the daemon's time per request (perf, bert-base's 768 outputs).
std::string OutputDataText(const InferResult& r, const FunctionInfo& f) {
  const bool half = f.datatype == "FP16";
  const size_t n = r.output.size() / (half ? 2 : 4);
  std::string text;
  text.reserve(n * 12 + 2);
  text.push_back('[');
  for (size_t i = 0; i < n; ++i) {
    float x = 0;
    if (half) {
      uint16_t h;
      std::memcpy(&h, r.output.data() + i * 2, 2);
      x = FromHalf(h);
    } else {
      std::memcpy(&x, r.output.data() + i * 4, 4);
    }
    char digits[32];
    const auto end = std::to_chars(digits, digits + sizeof digits, std::isfinite(x) ? x : 0.0f).ptr;
    if (i > 0) text.push_back(',');
    text.append(digits, end);
  }
  text.push_back(']');
  return text;
}

// The request asks for its output as binary data: "parameters": {"binary_data_output": true}, or its "output"
// entry has "parameters": {"binary_data": true}.
bool WantsBinaryOutput(const json& body) {
  const auto flag = [](const json& obj, const char* key) {
    return obj.is_object() && obj.contains("parameters") && obj["parameters"].is_object() &&
           obj["parameters"].contains(key) && obj["parameters"][key].is_boolean() && obj["parameters"][key].get<bool>();
  };
  if (flag(body, "binary_data_output")) return true;
  if (body.contains("outputs") && body["outputs"].is_array()) {
    for (const json& o : body["outputs"]) {
      if (flag(o, "binary_data")) return true;
    }
  }
  return false;
}

int StatusFor(const InferResult& r) {
  if (r.code == "unknown_function") return 404;
  if (r.code == "bad_input") return 400;
  if (r.code == "deadline_unreachable" || r.code == "overloaded") return 429;
  if (r.code == "stage_failed") return 500;
  return 503;  // no_capacity, draining, load_failed, worker_lost, slice_taken, function_removed
}

// cpp-httplib's task queue, elastic: one thread per open connection (it serves a keep-alive connection on one
// thread until the connection closes), started on demand and kept while idle for the next, up to `max`. A fixed
// pool of 64 left the 65th keep-alive client waiting with no answer while 64 others stayed busy.
class ConnectionPool final : public httplib::TaskQueue {
 public:
  explicit ConnectionPool(size_t max) : max_(std::max<size_t>(1, max)) {}
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;
  ~ConnectionPool() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.push_back(std::move(fn));
    if (idle_ < jobs_.size() && threads_.size() < max_) {
      threads_.emplace_back([this] { Work(); });
    } else {
      ready_.notify_one();
    }
  }

  void shutdown() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
      stop_ = true;
    }
    ready_.notify_all();
    for (std::thread& t : threads_) t.join();  // enqueue is not called once shutdown has begun
  }

 private:
  void Work() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        ++idle_;
        ready_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
        --idle_;
        if (jobs_.empty()) return;  // stopping, nothing left
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }

  const size_t max_;
  std::mutex mu_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> jobs_;  // GUARDED_BY(mu_)
  std::vector<std::thread> threads_;        // GUARDED_BY(mu_) while growing; joined by shutdown
  size_t idle_ = 0;                         // GUARDED_BY(mu_)
  bool stop_ = false;                       // GUARDED_BY(mu_)
};

}  // namespace

HttpApi::HttpApi(Controller& controller, HttpApiOptions options)
    : controller_(controller), options_(std::move(options)), server_(std::make_unique<httplib::Server>()) {
  const size_t max = options_.max_connections;
  server_->new_task_queue = [max] { return new ConnectionPool(max); };
  server_->set_payload_max_length(options_.max_body_bytes);
  server_->set_keep_alive_max_count(100000);
  server_->set_keep_alive_timeout(options_.keep_alive_seconds);
  server_->set_tcp_nodelay(true);  // a response is one small write: never wait for the ACK of the last (Nagle)
  Routes();
}

HttpApi::~HttpApi() = default;

void HttpApi::Routes() {
  httplib::Server& s = *server_;
  Controller& c = controller_;
  const std::string token = options_.token;
  // A mutating endpoint: the bearer token when one is set.
  const auto authorized = [token](const httplib::Request& req, httplib::Response& res) {
    if (token.empty() || req.get_header_value("Authorization") == "Bearer " + token) return true;
    Error(res, 401, "this endpoint needs \"Authorization: Bearer <token>\"", "unauthorized");
    return false;
  };

  s.Get("/v2/health/live", [](const httplib::Request&, httplib::Response& res) { Reply(res, 200, {{"live", true}}); });
  s.Get("/v2/health/ready", [&c](const httplib::Request&, httplib::Response& res) {
    const bool ready = !c.draining();
    Reply(res, ready ? 200 : 503, {{"ready", ready}});
  });
  s.Get("/v2", [](const httplib::Request&, httplib::Response& res) {
    Reply(res, 200,
          {{"name", "fluidfaas"}, {"version", "0.1.0"}, {"extensions", {"model_repository", "binary_tensor_data"}}});
  });
  s.Get(R"(/v2/models/([^/]+))", [&c](const httplib::Request& req, httplib::Response& res) {
    const auto f = c.Function(req.matches[1]);
    if (!f) return Error(res, 404, "unknown model '" + std::string(req.matches[1]) + "'", "unknown_function");
    Reply(res, 200, ModelMetadata(*f));
  });
  s.Get(R"(/v2/models/([^/]+)/ready)", [&c](const httplib::Request& req, httplib::Response& res) {
    const auto f = c.Function(req.matches[1]);
    if (!f) return Error(res, 404, "unknown model '" + std::string(req.matches[1]) + "'", "unknown_function");
    Reply(res, 200, {{"name", f->name}, {"ready", !c.draining()}});
  });
  s.Post(R"(/v2/models/([^/]+)/infer)", [&c](const httplib::Request& req, httplib::Response& res) {
    const std::string name = req.matches[1];
    const auto f = c.Function(name);
    if (!f) return Error(res, 404, "unknown model '" + name + "'", "unknown_function");
    // Binary tensor extension: the first Inference-Header-Content-Length bytes are the JSON, the rest tensors.
    std::string_view header = req.body;
    std::string_view binary;
    if (req.has_header("Inference-Header-Content-Length")) {
      const std::string text = req.get_header_value("Inference-Header-Content-Length");
      size_t n = 0;
      const auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), n);
      if (err != std::errc() || end != text.data() + text.size() || n > req.body.size()) {
        return Error(res, 400, "Inference-Header-Content-Length must be a byte count within the body", "bad_input");
      }
      header = header.substr(0, n);
      binary = std::string_view(req.body).substr(n);
    }
    const json body = json::parse(header, nullptr, /*allow_exceptions=*/false);
    if (body.is_discarded()) return Error(res, 400, "the body is not valid JSON", "bad_input");
    auto input = ParseInput(body, *f, binary);
    if (!input.ok()) return Error(res, 400, input.status().message(), "bad_input");
    std::optional<double> timeout_ms;
    if (body.contains("parameters") && body["parameters"].is_object() && body["parameters"].contains("timeout_ms")) {
      const json& t = body["parameters"]["timeout_ms"];
      if (!t.is_number() || !CheckRange("parameters.timeout_ms", t.get<double>(), 0.0, 1e7, true).ok()) {
        return Error(res, 400, "parameters.timeout_ms must be a number in (0, 1e7]", "bad_input");
      }
      timeout_ms = t.get<double>();
    }
    auto promise = std::make_shared<std::promise<InferResult>>();
    auto future = promise->get_future();
    c.Infer(name, std::move(*input), timeout_ms, [promise](InferResult r) { promise->set_value(std::move(r)); });
    const InferResult r = future.get();  // the controller answers every request exactly once
    if (r.outcome != Outcome::kCompleted) {
      // Worth retrying soon: the deadline or the node's limit (429), or every slice busy (503 no_capacity).
      if (StatusFor(r) == 429 || r.code == "no_capacity") res.set_header("Retry-After", "1");
      return Error(res, StatusFor(r), r.detail, r.code);
    }
    const bool binary_out = WantsBinaryOutput(body);
    json output = {{"name", "output"}, {"datatype", f->datatype}, {"shape", OutputShape(*f)}};
    if (binary_out) {
      output["parameters"] = {{"binary_data_size", r.output.size()}};
    } else {
      output["data"] = nullptr;  // a placeholder for the values' text, spliced in below
    }
    json out = {
        {"model_name", name},
        {"model_version", "1"},
        {"outputs", {output}},
        {"parameters",
         {{"instance", r.instance}, {"queue_ms", r.queue_ms}, {"compute_ms", r.compute_ms}, {"total_ms", r.total_ms}}}};
    if (body.contains("id") && body["id"].is_string()) out["id"] = body["id"];
    std::string payload = out.dump();
    if (!binary_out) {
      // The placeholder is the first "data":null outside a string (inside one its quotes would be escaped).
      size_t at = payload.find("\"data\":null");
      while (at != std::string::npos && at > 0 && payload[at - 1] == '\\') at = payload.find("\"data\":null", at + 1);
      if (at == std::string::npos) return Error(res, 500, "could not write the output", "internal");
      payload.replace(at + 7, 4, OutputDataText(r, *f));
      res.status = 200;
      return res.set_content(payload, "application/json");
    }
    res.set_header("Inference-Header-Content-Length", std::to_string(payload.size()));
    payload.append(reinterpret_cast<const char*>(r.output.data()), r.output.size());
    res.status = 200;
    res.set_content(payload, "application/octet-stream");
  });

  // Model repository extension: the repository is the zoo and the node's function directories (--repository);
  // a directory's name wins over a zoo model's.
  s.Post("/v2/repository/index", [&c](const httplib::Request&, httplib::Response& res) {
    json out = json::array();
    std::set<std::string> listed;
    for (const FunctionInfo& f : c.Functions()) {
      out.push_back({{"name", f.name}, {"version", "1"}, {"state", "READY"}});
      listed.insert(f.name);
    }
    auto unloaded = [&](const std::string& name) {
      if (listed.insert(name).second) {
        out.push_back({{"name", name}, {"version", "1"}, {"state", "UNAVAILABLE"}, {"reason", "unloaded"}});
      }
    };
    for (const std::string& name : c.RepositoryFunctions()) unloaded(name);
    for (const model::ZooEntry& z : model::ZooModels()) unloaded(std::string(z.name));
    Reply(res, 200, out);
  });
  s.Post(R"(/v2/repository/models/([^/]+)/load)",
         [&c, authorized](const httplib::Request& req, httplib::Response& res) {
           if (!authorized(req, res)) return;
           const std::string name = req.matches[1];
           if (c.Function(name)) return Reply(res, 200, json::object());
           const std::vector<std::string> dirs = c.RepositoryFunctions();
           FunctionConfig f;
           f.name = name;
           (std::binary_search(dirs.begin(), dirs.end(), name) ? f.directory : f.model) = name;
           const Status st = c.Deploy(f);
           if (!st.ok()) return Error(res, StatusFor(st), st.message());
           Reply(res, 200, json::object());
         });
  s.Post(R"(/v2/repository/models/([^/]+)/unload)",
         [&c, authorized](const httplib::Request& req, httplib::Response& res) {
           if (!authorized(req, res)) return;
           const Status st = c.Remove(req.matches[1]);
           if (!st.ok()) return Error(res, 404, st.message(), "unknown_function");
           Reply(res, 200, json::object());
         });

  s.Get("/v1/node", [&c](const httplib::Request&, httplib::Response& res) { Reply(res, 200, c.NodeJson()); });
  s.Get("/v1/functions", [&c](const httplib::Request&, httplib::Response& res) {
    json out = json::array();
    for (const FunctionInfo& f : c.Functions()) out.push_back(ModelMetadata(f));
    Reply(res, 200, out);
  });
  s.Post("/v1/functions", [&c, authorized](const httplib::Request& req, httplib::Response& res) {
    if (!authorized(req, res)) return;
    const json body = json::parse(req.body, nullptr, false);
    auto text = [&body](const char* field) {
      const auto it = body.find(field);
      return it != body.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    if (!body.is_object() || text("model").empty() == text("directory").empty()) {
      return Error(res, 400,
                   "body: {\"model\": zoo model} or {\"directory\": a function directory of the repository}, "
                   "with \"name\", \"slo_ms\", \"max_batch\", \"time_scale\"",
                   "bad_input");
    }
    FunctionConfig f;
    f.model = text("model");
    f.directory = text("directory");
    f.name = text("name");
    for (const char* field : {"slo_ms", "time_scale", "max_batch"}) {
      if (!body.contains(field)) continue;
      const json& v = body[field];
      const std::string name(field);
      if (name == "max_batch" ? !v.is_number_integer() : !v.is_number()) {
        return Error(res, 400, name + (name == "max_batch" ? " must be an integer" : " must be a number"), "bad_input");
      }
      if (name == "max_batch") {
        const auto b = v.get<int64_t>();
        if (const Status st = CheckRange("max_batch", b, 1, kMaxBatch); !st.ok()) {
          return Error(res, 400, st.message(), "bad_input");
        }
        f.max_batch = static_cast<int>(b);
      } else {
        (name == "slo_ms" ? f.slo_ms : f.time_scale) = v.get<double>();
      }
    }
    const Status st = c.Deploy(f);
    if (!st.ok()) return Error(res, StatusFor(st), st.message());
    Reply(res, 201, ModelMetadata(*c.Function(f.name.empty() ? f.model + f.directory : f.name)));
  });
  s.Delete(R"(/v1/functions/([^/]+))", [&c, authorized](const httplib::Request& req, httplib::Response& res) {
    if (!authorized(req, res)) return;
    const Status st = c.Remove(req.matches[1]);
    if (!st.ok()) return Error(res, 404, st.message(), "unknown_function");
    Reply(res, 200, json::object());
  });
  s.Get("/metrics", [&c](const httplib::Request&, httplib::Response& res) {
    res.set_content(c.MetricsText(), "text/plain; version=0.0.4");
  });
  s.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.status == 413) return Error(res, 413, "the body is over the limit", "too_large");
    if (res.status == 404 && res.body.empty()) return Error(res, 404, "no such endpoint");
    if (res.status == 400 && res.body.empty()) {
      return Error(res, 400, "malformed request (a POST needs a body with its Content-Length, even an empty one)",
                   "bad_request");
    }
  });
}

Status HttpApi::Listen(const std::string& host, int port) {
  if (!server_->listen(host, port)) return Status::IoError("cannot listen on " + host + ":" + std::to_string(port));
  return Status::Ok();
}

Result<int> HttpApi::Bind(const std::string& host, int port) {
  const int bound = port == 0 ? server_->bind_to_any_port(host) : (server_->bind_to_port(host, port) ? port : -1);
  if (bound < 0) return Status::IoError("cannot bind " + host + ":" + std::to_string(port));
  WidenListenBacklog(bound);
  return bound;
}

// Debian's cpp-httplib is a compiled library built with a listen backlog of 5 (CPPHTTPLIB_LISTEN_BACKLOG cannot be
// changed from here): a burst of new connections overflowed it, and the kernel's handshake retry a second later
// left those clients with a failed read. listen() again on the bound socket only widens its queue; the socket is
// found as the one of this process that listens on `port`.
void HttpApi::WidenListenBacklog(int port) const {
  for (int fd = 0; fd < 1024; ++fd) {
    int listening = 0;
    socklen_t len = sizeof listening;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || listening == 0) continue;
    sockaddr_storage addr{};
    socklen_t addr_len = sizeof addr;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &addr_len) != 0) continue;
    const int bound = addr.ss_family == AF_INET    ? ntohs(reinterpret_cast<const sockaddr_in&>(addr).sin_port)
                      : addr.ss_family == AF_INET6 ? ntohs(reinterpret_cast<const sockaddr_in6&>(addr).sin6_port)
                                                   : -1;
    if (bound == port && ::listen(fd, options_.listen_backlog) == 0) return;
  }
  spdlog::warn("http: could not widen the listen backlog of port {}: bursts of new connections may wait", port);
}

void HttpApi::ListenAfterBind() {
  server_->listen_after_bind();
}

void HttpApi::Stop() {
  server_->stop();
}

}  // namespace fluidfaas::daemon
