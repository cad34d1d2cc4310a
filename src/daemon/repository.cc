#include "daemon/repository.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <system_error>

#include "common/limits.h"
#include "common/subprocess.h"
#include "model/manifest.h"

namespace fluidfaas::daemon {
namespace fs = std::filesystem;

namespace {

constexpr int64_t kMaxBlockParams = 1e12;    // a trillion parameters in one block is a mistake
constexpr size_t kMaxCheckOutput = 1 << 20;  // the check's JSON
constexpr Duration kCheckTimeout = Seconds(10);

// `path` lies inside `root` (both absolute and normalised): every component of root is a prefix of path's.
bool Inside(const fs::path& path, const fs::path& root) {
  auto p = path.begin();
  for (auto r = root.begin(); r != root.end(); ++r, ++p) {
    if (r->empty()) continue;  // a trailing separator
    if (p == path.end() || *p != *r) return false;
  }
  return true;
}

Result<std::vector<int64_t>> Shape(const nlohmann::json& j, const std::string& field) {
  if (!j.is_array() || j.empty() || j.size() > 8) {
    return Status::InvalidArgument(field + ": expected a list of 1..8 dimensions");
  }
  std::vector<int64_t> shape;
  int64_t elems = 1;
  for (const auto& d : j) {
    if (!d.is_number_integer()) return Status::InvalidArgument(field + ": dimensions must be integers");
    const int64_t v = d.get<int64_t>();
    FF_RETURN_IF_ERROR(CheckRange(field, v, 1, kMaxTensorElements));
    elems = SaturatingMul(elems, v);
    if (elems > kMaxTensorElements) {
      return Status::InvalidArgument(field + ": more than " + std::to_string(kMaxTensorElements) + " elements");
    }
    shape.push_back(v);
  }
  return shape;
}

int64_t Elements(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;  // bounded by Shape
  return n;
}

}  // namespace

Result<model::FunctionSpec> SpecFromCheck(const nlohmann::json& check,
                                          std::vector<std::vector<int64_t>>* block_inputs) {
  if (!check.is_object()) return Status::InvalidArgument("check: expected a JSON object");
  if (!check.value("valid", false)) {
    const auto reason = check.find("reason");
    return Status::InvalidArgument(reason != check.end() && reason->is_string() ? reason->get<std::string>()
                                                                                : "the function does not load");
  }
  model::FunctionSpec f;
  const auto name = check.find("name");
  if (name == check.end() || !name->is_string()) return Status::InvalidArgument("check.name: expected a string");
  f.name = name->get<std::string>();
  FF_RETURN_IF_ERROR(CheckName("check.name", f.name));
  const auto dtype = check.find("dtype");
  if (dtype != check.end()) {
    if (!dtype->is_string()) return Status::InvalidArgument("check.dtype: expected a string");
    FF_ASSIGN_OR_RETURN(f.dtype, model::ParseDType(dtype->get<std::string>()));
  }
  const auto slo = check.find("slo_ms");
  if (slo == check.end() || !slo->is_number()) return Status::InvalidArgument("check.slo_ms: expected a number");
  f.slo_ms = slo->get<double>();
  FF_RETURN_IF_ERROR(CheckRange("check.slo_ms", f.slo_ms, 0.0, 1e7, /*open_low=*/true));
  const auto batch = check.find("max_batch");
  if (batch == check.end() || !batch->is_number_integer()) {
    return Status::InvalidArgument("check.max_batch: expected an integer");
  }
  FF_RETURN_IF_ERROR(CheckRange("check.max_batch", batch->get<int64_t>(), 1, kMaxBatch));
  f.max_batch = batch->get<int>();
  FF_ASSIGN_OR_RETURN(f.input_shape, Shape(check.value("input_shape", nlohmann::json()), "check.input_shape"));
  const auto blocks = check.find("blocks");
  if (blocks == check.end() || !blocks->is_array() || blocks->empty() || blocks->size() > model::kMaxBlocks) {
    return Status::InvalidArgument("check.blocks: expected a list of 1.." + std::to_string(model::kMaxBlocks) +
                                   " blocks");
  }
  int64_t in_elems = Elements(f.input_shape);
  std::vector<std::vector<int64_t>> inputs = {f.input_shape};
  for (size_t i = 0; i < blocks->size(); ++i) {
    const nlohmann::json& b = (*blocks)[i];
    const std::string field = "check.blocks[" + std::to_string(i) + "]";
    if (!b.is_object() || !b.contains("name") || !b["name"].is_string() || !b.contains("params") ||
        !b["params"].is_number_integer()) {
      return Status::InvalidArgument(field + ": expected {name, params, output_shape}");
    }
    model::Block block;
    block.name = b["name"].get<std::string>();
    block.kind = model::BlockKind::kCustom;
    block.params = b["params"].get<int64_t>();
    FF_RETURN_IF_ERROR(CheckRange(field + ".params", block.params, 0, kMaxBlockParams));
    FF_ASSIGN_OR_RETURN(std::vector<int64_t> out,
                        Shape(b.value("output_shape", nlohmann::json()), field + ".output_shape"));
    block.out_elems = Elements(out);
    block.peak_act_elems = SaturatingAdd(in_elems, block.out_elems);
    // The stated assumption: one multiply-add per parameter and sample, as one GEMM; the block's input and output
    // move once per sample.
    block.macs = static_cast<double>(block.params);
    model::Op op;
    op.op_class = block.params > 0 ? model::Op::Class::kMatmul : model::Op::Class::kMemory;
    op.macs = block.macs;
    op.act_elems = static_cast<double>(block.peak_act_elems);
    op.weight_elems = static_cast<double>(block.params);
    block.ops.push_back(op);
    f.blocks.push_back(std::move(block));
    in_elems = f.blocks.back().out_elems;
    if (i + 1 == blocks->size()) {
      f.output_shape = std::move(out);
    } else {
      inputs.push_back(std::move(out));
    }
  }
  if (block_inputs != nullptr) *block_inputs = std::move(inputs);
  return f;
}

Result<FunctionRepository> FunctionRepository::Open(const std::string& dir, std::string worker_binary) {
  std::error_code ec;
  const fs::path root = fs::canonical(dir, ec);
  if (ec || !fs::is_directory(root, ec)) {
    return Status::NotFound("function repository '" + Printable(dir) + "' is not a directory");
  }
  return FunctionRepository(root.string(), std::move(worker_binary));
}

Result<std::string> FunctionRepository::Resolve(std::string_view name) const {
  FF_RETURN_IF_ERROR(CheckName("function directory", name));
  std::error_code ec;
  const fs::path candidate = fs::path(root_) / std::string(name);
  if (!fs::exists(candidate, ec)) {
    return Status::NotFound("no function directory '" + std::string(name) + "' in the repository " + root_);
  }
  const fs::path real = fs::canonical(candidate, ec);
  if (ec) return Status::NotFound("function directory '" + std::string(name) + "': " + ec.message());
  if (!Inside(real, fs::path(root_)) || real == fs::path(root_)) {
    return Status::InvalidArgument("function directory '" + std::string(name) + "' resolves outside the repository");
  }
  if (!fs::is_directory(real, ec) || !fs::is_regular_file(real / "manifest.yaml", ec)) {
    return Status::NotFound("'" + std::string(name) +
                            "' in the repository is not a function directory (no manifest.yaml)");
  }
  return real.string();
}

std::vector<std::string> FunctionRepository::List() const {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(root_, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (CheckName("", name).ok() && Resolve(name).ok()) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

// `fluidfaas-worker check DIR --json`'s answer (the worker loads the blocks and runs them).
Result<nlohmann::json> FunctionRepository::Check(const std::string& name, const std::string& dir) const {
  FF_ASSIGN_OR_RETURN(ProcessOutput run, RunProcess({worker_, "check", dir, "--json"}, kCheckTimeout, kMaxCheckOutput));
  nlohmann::json check = nlohmann::json::parse(run.out, nullptr, false);
  if (check.is_discarded() || !check.is_object()) {
    std::string why = run.err.substr(run.err.size() > 300 ? run.err.size() - 300 : 0);
    return Status::Unavailable("cannot inspect '" + name + "' with " + worker_ +
                               " (a worker built without LibTorch cannot run TorchScript functions): exit " +
                               std::to_string(run.exit_code) + (why.empty() ? "" : ": " + Printable(why, 300)));
  }
  return check;
}

Result<InspectedFunction> FunctionRepository::Inspect(std::string_view name) const {
  InspectedFunction out;
  out.name = std::string(name);
  FF_ASSIGN_OR_RETURN(out.dir, Resolve(name));
  FF_ASSIGN_OR_RETURN(const nlohmann::json check, Check(out.name, out.dir));
  auto spec = SpecFromCheck(check, &out.block_inputs);
  if (!spec.ok()) return spec.status().WithContext("function '" + out.name + "'");
  out.spec = std::move(*spec);
  const fs::path profile = fs::path(out.dir) / "profile.json";
  std::error_code ec;
  if (fs::exists(profile, ec)) {
    auto p = model::LoadProfile(profile.string());
    if (!p.ok()) return p.status().WithContext("function '" + out.name + "'");
    FF_RETURN_IF_ERROR(model::CheckProfileMatches(*p, out.spec).WithContext("function '" + out.name + "'"));
    out.profile = std::move(*p);
  }
  return out;
}

bool FunctionRepository::IsGenerative(std::string_view name) const {
  const Result<std::string> dir = Resolve(name);
  return dir.ok() && model::IsGenerativeDirectory(*dir);
}

Result<InspectedGenerative> FunctionRepository::InspectGenerative(std::string_view name) const {
  InspectedGenerative out;
  out.name = std::string(name);
  FF_ASSIGN_OR_RETURN(out.dir, Resolve(name));
  auto manifest = model::ReadGenerativeManifest(out.dir);
  if (!manifest.ok()) return manifest.status().WithContext("function '" + out.name + "'");
  out.manifest = std::move(*manifest);
  if (out.manifest.tokenizer.empty()) {
    out.tokenizer = model::Tokenizer::SharedBytes();
  } else {
    auto tokenizer = model::Tokenizer::ReadVocabulary(
        (std::filesystem::path(out.dir) / out.manifest.tokenizer).string(), out.manifest.vocab);
    if (!tokenizer.ok()) return tokenizer.status().WithContext("function '" + out.name + "'");
    out.tokenizer = std::make_shared<const model::Tokenizer>(std::move(*tokenizer));
  }
  FF_ASSIGN_OR_RETURN(const nlohmann::json check, Check(out.name, out.dir));
  if (check.value("valid", false) != true || check.value("kind", "") != "generative") {
    const std::string why = check.contains("reason") && check["reason"].is_string() ? check["reason"].get<std::string>()
                                                                                    : "its blocks do not generate";
    return Status::InvalidArgument("function '" + out.name + "': " + Printable(why, 300));
  }
  return out;
}

}  // namespace fluidfaas::daemon
