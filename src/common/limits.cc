#include "common/limits.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fluidfaas {
namespace {

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

}  // namespace

Status CheckRange(std::string_view field, double value, double lo, double hi, bool open_low) {
  const bool ok = std::isfinite(value) && (open_low ? value > lo : value >= lo) && value <= hi;
  if (ok) return Status::Ok();
  return Status::InvalidArgument(std::string(field) + ": " + Num(value) + " is not in " + (open_low ? "(" : "[") +
                                 Num(lo) + ", " + Num(hi) + "]");
}

Status CheckRange(std::string_view field, int64_t value, int64_t lo, int64_t hi) {
  if (value >= lo && value <= hi) return Status::Ok();
  return Status::InvalidArgument(std::string(field) + ": " + std::to_string(value) + " is not in " +
                                 std::to_string(lo) + ".." + std::to_string(hi));
}

Result<int64_t> CheckedMul(std::string_view what, int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r) || r < 0) {
    return Status::InvalidArgument(std::string(what) + ": " + std::to_string(a) + " x " + std::to_string(b) +
                                   " is out of range");
  }
  return r;
}

std::string Printable(std::string_view text, size_t max) {
  std::string out;
  for (size_t i = 0; i < text.size() && out.size() < max; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  if (text.size() > max) out += "...";
  return out;
}

Status CheckName(std::string_view field, std::string_view name) {
  bool ok = !name.empty() && name.size() <= kMaxNameLength;
  for (size_t i = 0; ok && i < name.size(); ++i) {
    const char c = name[i];
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    ok = alnum || (i > 0 && (c == '.' || c == '_' || c == '-'));
  }
  if (ok) return Status::Ok();
  return Status::InvalidArgument(std::string(field) + ": '" + Printable(name, 40) + "' is not a name (1.." +
                                 std::to_string(kMaxNameLength) +
                                 " letters, digits, '.', '_' or '-', starting with a letter or digit)");
}

Result<std::string> ReadBoundedFile(const std::string& path, int64_t max_bytes, std::string_view what) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) {
    if (!std::filesystem::exists(path)) return Status::NotFound("cannot open " + std::string(what) + " '" + path + "'");
    return Status::IoError("cannot read " + std::string(what) + " '" + path + "': " + ec.message());
  }
  if (size > static_cast<uintmax_t>(max_bytes)) {
    return Status::InvalidArgument(std::string(what) + " '" + path + "' is " + std::to_string(size) +
                                   " bytes, over the limit of " + std::to_string(max_bytes));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot open " + std::string(what) + " '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Status::IoError("cannot read " + std::string(what) + " '" + path + "'");
  return text.str();
}

}  // namespace fluidfaas
