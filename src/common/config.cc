#include "common/config.h"

#include <algorithm>
#include <vector>

#include "common/limits.h"
#include "common/strings.h"

namespace fluidfaas::config {

namespace {

constexpr int kMaxDepth = 64;  // nesting of maps and sequences: a config has four levels

// Duplicate keys are errors (YAML says keys are unique; yaml-cpp keeps both and answers the first), at any depth.
Status CheckUniqueKeys(const YAML::Node& node, std::string_view source, int depth) {
  if (depth > kMaxDepth) return Status::InvalidArgument(std::string(source) + ": nested deeper than 64 levels");
  if (node.IsSequence()) {
    for (const YAML::Node& item : node) FF_RETURN_IF_ERROR(CheckUniqueKeys(item, source, depth + 1));
  } else if (node.IsMap()) {
    std::vector<std::string> keys;
    for (const auto& item : node) {
      const YAML::Mark mark = item.first.Mark();
      const std::string key = item.first.IsScalar() ? item.first.Scalar() : YAML::Dump(item.first);
      if (std::find(keys.begin(), keys.end(), key) != keys.end()) {
        return Status::InvalidArgument(std::string(source) + ":" + std::to_string(mark.line + 1) + ":" +
                                       std::to_string(mark.column + 1) + ": duplicate key '" + Printable(key, 40) +
                                       "'");
      }
      keys.push_back(key);
      FF_RETURN_IF_ERROR(CheckUniqueKeys(item.second, source, depth + 1));
    }
  }
  return Status::Ok();
}

}  // namespace

Result<YAML::Node> ParseYaml(const std::string& text, std::string_view source) {
  if (static_cast<int64_t>(text.size()) > kMaxConfigBytes) {
    return Status::InvalidArgument(std::string(source) + ": " + std::to_string(text.size()) +
                                   " bytes, over the limit of " + std::to_string(kMaxConfigBytes));
  }
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    return Status::InvalidArgument(std::string(source) + ":" + std::to_string(e.mark.line + 1) + ":" +
                                   std::to_string(e.mark.column + 1) + ": " + e.msg);
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(std::string(source) + ": " + e.what());
  }
  FF_RETURN_IF_ERROR(CheckUniqueKeys(root, source, 0));
  return root;
}

Result<YAML::Node> LoadYamlFile(const std::string& path) {
  Result<std::string> text = ReadBoundedFile(path, kMaxConfigBytes, "config file");
  if (!text.ok()) return text.status();
  return ParseYaml(*text, path);
}

Status CheckMap(const YAML::Node& node, std::string_view where, std::initializer_list<std::string_view> known) {
  if (!node.IsMap()) return Status::InvalidArgument(std::string(where) + ": expected a map");
  for (const auto& item : node) {
    // Found by fuzzing: a key that is itself a map or list ({a: 1}: x) threw out of here.
    if (!item.first.IsScalar()) {
      return Status::InvalidArgument(std::string(where) + ": a key must be a plain name, not '" +
                                     Printable(YAML::Dump(item.first), 40) + "'");
    }
    const std::string key = item.first.Scalar();
    bool found = false;
    for (std::string_view k : known) found = found || k == key;
    if (!found) {
      return Status::InvalidArgument(std::string(where) + ": unknown key '" + Printable(key, 40) +
                                     "' (known: " + Join(known, ", ") + ")");
    }
  }
  return Status::Ok();
}

}  // namespace fluidfaas::config
