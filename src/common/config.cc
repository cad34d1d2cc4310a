#include "common/config.h"

#include <fstream>
#include <sstream>

#include "common/strings.h"

namespace fluidfaas::config {

Result<YAML::Node> ParseYaml(const std::string& text, std::string_view source) {
  try {
    return YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    return Status::InvalidArgument(std::string(source) + ":" + std::to_string(e.mark.line + 1) + ":" +
                                   std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
}

Result<YAML::Node> LoadYamlFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return Status::NotFound("cannot open config file '" + path + "'");
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Status::IoError("cannot read config file '" + path + "'");
  return ParseYaml(text.str(), path);
}

Status CheckMap(const YAML::Node& node, std::string_view where, std::initializer_list<std::string_view> known) {
  if (!node.IsMap()) return Status::InvalidArgument(std::string(where) + ": expected a map");
  for (const auto& item : node) {
    const std::string key = item.first.as<std::string>();
    bool found = false;
    for (std::string_view k : known) found = found || k == key;
    if (!found) {
      return Status::InvalidArgument(std::string(where) + ": unknown key '" + key + "' (known: " +
                                     Join(known, ", ") + ")");
    }
  }
  return Status::Ok();
}

}  // namespace fluidfaas::config
