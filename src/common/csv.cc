#include "common/csv.h"

#include <charconv>
#include <fstream>
#include <sstream>

namespace fluidfaas {
namespace {

Result<std::vector<std::string>> SplitLine(std::string_view line, const std::string& where) {
  std::vector<std::string> fields;
  std::string field;
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.push_back(std::move(field));
      field.clear();
    } else {
      field += c;
    }
  }
  if (quoted) return Status::InvalidArgument(where + ": unterminated quoted field");
  fields.push_back(std::move(field));
  return fields;
}

}  // namespace

Result<CsvTable> CsvTable::Parse(std::string_view text, std::string source) {
  CsvTable table;
  table.source_ = std::move(source);
  size_t line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    FF_ASSIGN_OR_RETURN(std::vector<std::string> fields,
                        SplitLine(line, table.source_ + ":" + std::to_string(line_no)));
    if (table.header_.empty()) {
      table.header_ = std::move(fields);
      continue;
    }
    if (fields.size() != table.header_.size()) {
      return Status::InvalidArgument(table.source_ + ":" + std::to_string(line_no) + ": " +
                                     std::to_string(fields.size()) + " fields, the header has " +
                                     std::to_string(table.header_.size()));
    }
    table.rows_.push_back(std::move(fields));
    table.lines_.push_back(line_no);
  }
  if (table.header_.empty()) return Status::InvalidArgument(table.source_ + ": empty file (no header)");
  return table;
}

Result<CsvTable> CsvTable::ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot open '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Status::IoError("cannot read '" + path + "'");
  return Parse(text.str(), path);
}

std::optional<size_t> CsvTable::Column(std::string_view name) const {
  for (size_t i = 0; i < header_.size(); ++i) {
    if (header_[i] == name) return i;
  }
  return std::nullopt;
}

Result<size_t> CsvTable::RequireColumn(std::string_view name) const {
  if (std::optional<size_t> c = Column(name)) return *c;
  return Status::InvalidArgument(source_ + ": no column named '" + std::string(name) + "'");
}

Result<double> CsvTable::Number(size_t row, size_t column) const {
  const std::string& cell = rows_[row][column];
  double value = 0;
  const auto [end, ec] = std::from_chars(cell.data(), cell.data() + cell.size(), value);
  if (cell.empty() || ec != std::errc() || end != cell.data() + cell.size()) {
    return Status::InvalidArgument(source_ + ":" + std::to_string(lines_[row]) + ": column '" + header_[column] +
                                   "': '" + cell + "' is not a number");
  }
  return value;
}

}  // namespace fluidfaas
