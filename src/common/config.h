// Reading configuration files: YAML, parsed then validated, each step returning a Status.
//
// A config module (for example gpu/node_config.h) turns a YAML document into its options struct with the
// readers below, which name the offending field in every error ("node.gpus[1].layout: expected a string"),
// then validates the struct's meaning in a separate function. Unknown keys are errors, so a typo never turns
// silently into a default.
//
// Thread safety: plain functions over values.
#pragma once

#include <yaml-cpp/yaml.h>

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace fluidfaas::config {

// Parses YAML text; `source` names it in errors (a file name, "<embedded default>").
Result<YAML::Node> ParseYaml(const std::string& text, std::string_view source);

// Reads and parses a YAML file. NotFound when it does not exist, IoError when it cannot be read.
Result<YAML::Node> LoadYamlFile(const std::string& path);

// InvalidArgument unless `node` is a map whose keys are all in `known`. `where` is the node's path.
Status CheckMap(const YAML::Node& node, std::string_view where, std::initializer_list<std::string_view> known);

// The value of map[key] as T, or nullopt when the key is absent. InvalidArgument when it does not convert.
// No yaml-cpp exception leaves these readers: a node of the wrong shape is an InvalidArgument naming the field.
template <typename T>
Result<std::optional<T>> Optional(const YAML::Node& map, std::string_view key, std::string_view where) {
  try {
    if (!map.IsMap()) return Status::InvalidArgument(std::string(where) + ": expected a map");
    const YAML::Node value = map[std::string(key)];
    if (!value) return std::optional<T>();
    try {
      return std::optional<T>(value.as<T>());
    } catch (const YAML::Exception&) {
      std::string text = YAML::Dump(value);
      if (text.size() > 60) text = text.substr(0, 60) + "...";
      for (char& c : text) c = (c >= 0x20 && c < 0x7f) ? c : '?';
      return Status::InvalidArgument(std::string(where) + "." + std::string(key) + ": cannot read '" + text +
                                     "' as the expected type");
    }
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(std::string(where) + "." + std::string(key) + ": " + e.what());
  }
}

// The value of map[key] as T. InvalidArgument when absent or when it does not convert.
template <typename T>
Result<T> Required(const YAML::Node& map, std::string_view key, std::string_view where) {
  FF_ASSIGN_OR_RETURN(std::optional<T> value, Optional<T>(map, key, where));
  if (!value) return Status::InvalidArgument(std::string(where) + ": missing required key '" + std::string(key) + "'");
  return std::move(*value);
}

}  // namespace fluidfaas::config
