#include "model/manifest.h"

#include <filesystem>

#include "common/config.h"
#include "common/limits.h"

namespace fluidfaas::model {
namespace {

// A block file: a plain relative path that stays inside the function directory.
Status CheckBlockFile(const std::string& where, const std::string& file) {
  const std::filesystem::path p(file);
  bool inside = !file.empty() && file.size() <= 255 && p.is_relative() && file.find('\0') == std::string::npos;
  for (const auto& part : p) inside = inside && part != "..";
  if (inside) return Status::Ok();
  return Status::InvalidArgument(where + ".file: '" + Printable(file, 60) +
                                 "' is not a relative path inside the function directory");
}

Result<FunctionManifest> Parse(const YAML::Node& doc) {
  FF_RETURN_IF_ERROR(
      config::CheckMap(doc, "manifest", {"name", "slo_ms", "max_batch", "dtype", "input_shape", "blocks"}));
  FunctionManifest m;
  FF_ASSIGN_OR_RETURN(m.name, config::Required<std::string>(doc, "name", "manifest"));
  FF_RETURN_IF_ERROR(CheckName("manifest.name", m.name));
  FF_ASSIGN_OR_RETURN(m.slo_ms, config::Required<double>(doc, "slo_ms", "manifest"));
  FF_RETURN_IF_ERROR(CheckRange("manifest.slo_ms", m.slo_ms, 0, 1e7, /*open_low=*/true));
  FF_ASSIGN_OR_RETURN(std::optional<int> max_batch, config::Optional<int>(doc, "max_batch", "manifest"));
  m.max_batch = max_batch.value_or(1);
  FF_RETURN_IF_ERROR(CheckRange("manifest.max_batch", int64_t{m.max_batch}, 1, kMaxBatch));
  FF_ASSIGN_OR_RETURN(std::optional<std::string> dtype, config::Optional<std::string>(doc, "dtype", "manifest"));
  if (dtype) {
    Result<DType> d = ParseDType(*dtype);
    if (!d.ok()) return d.status().WithContext("manifest.dtype");
    m.dtype = *d;
  }
  FF_ASSIGN_OR_RETURN(m.input_shape, config::Required<std::vector<int64_t>>(doc, "input_shape", "manifest"));
  if (m.input_shape.empty() || m.input_shape.size() > 8) {
    return Status::InvalidArgument("manifest.input_shape: expected 1..8 dimensions");
  }
  int64_t elements = 1;
  for (int64_t d : m.input_shape) {
    FF_RETURN_IF_ERROR(CheckRange("manifest.input_shape", d, 1, kMaxTensorElements));
    FF_ASSIGN_OR_RETURN(elements, CheckedMul("manifest.input_shape", elements, d));
    FF_RETURN_IF_ERROR(CheckRange("manifest.input_shape: elements per sample", elements, 1, kMaxTensorElements));
  }
  const YAML::Node blocks = doc["blocks"];
  if (!blocks || !blocks.IsSequence() || blocks.size() == 0 || blocks.size() > kMaxBlocks) {
    return Status::InvalidArgument("manifest.blocks: expected a list of 1.." + std::to_string(kMaxBlocks) + " blocks");
  }
  for (size_t i = 0; i < blocks.size(); ++i) {
    const std::string where = "manifest.blocks[" + std::to_string(i) + "]";
    FF_RETURN_IF_ERROR(config::CheckMap(blocks[i], where, {"name", "file"}));
    BlockFile b;
    FF_ASSIGN_OR_RETURN(b.name, config::Required<std::string>(blocks[i], "name", where));
    FF_RETURN_IF_ERROR(CheckName(where + ".name", b.name));
    FF_ASSIGN_OR_RETURN(b.file, config::Required<std::string>(blocks[i], "file", where));
    FF_RETURN_IF_ERROR(CheckBlockFile(where, b.file));
    m.blocks.push_back(std::move(b));
  }
  return m;
}

}  // namespace

Result<FunctionManifest> ParseManifest(const std::string& text, const std::string& source) {
  FF_ASSIGN_OR_RETURN(YAML::Node doc, config::ParseYaml(text, source));
  Result<FunctionManifest> m = Status::Internal("unset");
  try {
    m = Parse(doc);
  } catch (const YAML::Exception& e) {  // a shape the readers did not expect: an error, never a crash
    m = Status::InvalidArgument(std::string("manifest: ") + e.what());
  }
  if (!m.ok()) return m.status().WithContext(source);
  return m;
}

Result<FunctionManifest> ReadManifest(const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / "manifest.yaml").string();
  FF_ASSIGN_OR_RETURN(std::string text, ReadBoundedFile(path, kMaxConfigBytes, "manifest"));
  return ParseManifest(text, path);
}

}  // namespace fluidfaas::model
