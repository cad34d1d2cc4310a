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

constexpr int kMaxVocab = 1 << 20;
constexpr int kMaxModel = 1 << 16;

Result<GenerativeManifest> ParseGenerative(const YAML::Node& doc) {
  using Kind = GenerativeManifest::Block::Kind;
  FF_RETURN_IF_ERROR(config::CheckMap(doc, "manifest",
                                      {"name", "kind", "vocab", "tokenizer", "d_model", "heads", "ffn", "max_positions",
                                       "slo_ms", "tpot_ms", "blocks"}));
  GenerativeManifest m;
  FF_ASSIGN_OR_RETURN(m.name, config::Required<std::string>(doc, "name", "manifest"));
  FF_RETURN_IF_ERROR(CheckName("manifest.name", m.name));
  FF_ASSIGN_OR_RETURN(const std::string kind, config::Required<std::string>(doc, "kind", "manifest"));
  if (kind != "generative") return Status::InvalidArgument("manifest.kind: '" + kind + "' (expected generative)");
  FF_ASSIGN_OR_RETURN(m.vocab, config::Required<int>(doc, "vocab", "manifest"));
  FF_ASSIGN_OR_RETURN(m.d_model, config::Required<int>(doc, "d_model", "manifest"));
  FF_ASSIGN_OR_RETURN(m.heads, config::Required<int>(doc, "heads", "manifest"));
  FF_ASSIGN_OR_RETURN(m.max_positions, config::Required<int>(doc, "max_positions", "manifest"));
  FF_RETURN_IF_ERROR(CheckRange("manifest.vocab", int64_t{m.vocab}, 2, kMaxVocab));
  FF_ASSIGN_OR_RETURN(std::optional<std::string> tokenizer,
                      config::Optional<std::string>(doc, "tokenizer", "manifest"));
  if (tokenizer) {
    FF_RETURN_IF_ERROR(CheckBlockFile("manifest.tokenizer", *tokenizer));
    m.tokenizer = std::move(*tokenizer);
  } else if (m.vocab != 256) {
    return Status::InvalidArgument("manifest.vocab: " + std::to_string(m.vocab) +
                                   " tokens need a tokenizer file (manifest.tokenizer); without one the text is "
                                   "byte-level, a vocab of 256");
  }
  FF_RETURN_IF_ERROR(CheckRange("manifest.d_model", int64_t{m.d_model}, 1, kMaxModel));
  FF_RETURN_IF_ERROR(CheckRange("manifest.heads", int64_t{m.heads}, 1, m.d_model));
  if (m.d_model % m.heads != 0) return Status::InvalidArgument("manifest.heads must divide manifest.d_model");
  FF_ASSIGN_OR_RETURN(std::optional<int> ffn, config::Optional<int>(doc, "ffn", "manifest"));
  m.ffn = ffn.value_or(4 * m.d_model);
  FF_RETURN_IF_ERROR(CheckRange("manifest.ffn", int64_t{m.ffn}, 1, int64_t{4} * kMaxModel));
  for (const auto& [field, value] : {std::pair{"slo_ms", &m.slo_ms}, std::pair{"tpot_ms", &m.tpot_ms}}) {
    FF_ASSIGN_OR_RETURN(std::optional<double> v, config::Optional<double>(doc, field, "manifest"));
    if (!v) continue;
    FF_RETURN_IF_ERROR(CheckRange(std::string("manifest.") + field, *v, 0, 1e7, /*open_low=*/true));
    *value = *v;
  }
  FF_RETURN_IF_ERROR(CheckRange("manifest.max_positions", int64_t{m.max_positions}, 2, kMaxModel));
  const YAML::Node blocks = doc["blocks"];
  if (!blocks || !blocks.IsSequence() || blocks.size() < 3 || blocks.size() > kMaxBlocks) {
    return Status::InvalidArgument("manifest.blocks: expected an embed block, layers, then a head block");
  }
  for (size_t i = 0; i < blocks.size(); ++i) {
    const std::string where = "manifest.blocks[" + std::to_string(i) + "]";
    FF_RETURN_IF_ERROR(config::CheckMap(blocks[i], where, {"name", "file", "kind"}));
    GenerativeManifest::Block b;
    FF_ASSIGN_OR_RETURN(b.name, config::Required<std::string>(blocks[i], "name", where));
    FF_ASSIGN_OR_RETURN(b.file, config::Required<std::string>(blocks[i], "file", where));
    FF_RETURN_IF_ERROR(CheckBlockFile(where, b.file));
    FF_ASSIGN_OR_RETURN(const std::string k, config::Required<std::string>(blocks[i], "kind", where));
    const Kind expected = i == 0 ? Kind::kEmbed : (i + 1 == blocks.size() ? Kind::kHead : Kind::kLayer);
    const char* names[] = {"embed", "layer", "head"};
    if (k != names[static_cast<int>(expected)]) {
      std::string message = where;
      message.append(".kind: '").append(k).append("' (expected ").append(names[static_cast<int>(expected)]);
      message.append(": an embed block first, the head last, layers between)");
      return Status::InvalidArgument(message);
    }
    b.kind = expected;
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

Result<GenerativeManifest> ReadGenerativeManifest(const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / "manifest.yaml").string();
  FF_ASSIGN_OR_RETURN(std::string text, ReadBoundedFile(path, kMaxConfigBytes, "manifest"));
  FF_ASSIGN_OR_RETURN(YAML::Node doc, config::ParseYaml(text, path));
  Result<GenerativeManifest> m = Status::Internal("unset");
  try {
    m = ParseGenerative(doc);
  } catch (const YAML::Exception& e) {
    m = Status::InvalidArgument(std::string("manifest: ") + e.what());
  }
  if (!m.ok()) return m.status().WithContext(path);
  return m;
}

bool IsGenerativeDirectory(const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / "manifest.yaml").string();
  Result<std::string> text = ReadBoundedFile(path, kMaxConfigBytes, "manifest");
  if (!text.ok()) return false;
  Result<YAML::Node> doc = config::ParseYaml(*text, path);
  if (!doc.ok() || !doc->IsMap()) return false;
  try {
    const YAML::Node kind = (*doc)["kind"];
    return kind && kind.IsScalar() && kind.as<std::string>() == "generative";
  } catch (const YAML::Exception&) {
    return false;
  }
}

}  // namespace fluidfaas::model
