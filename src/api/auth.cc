#include "api/auth.h"

#include <algorithm>
#include <cctype>

namespace fluidfaas::api {

bool ConstantTimeEqual(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  return diff == 0;
}

bool Authorized(const HttpRequest& req, const std::string& token) {
  if (token.empty()) return true;
  std::string_view value = req.Header("Authorization");
  const size_t space = value.find(' ');
  if (space == std::string_view::npos) return false;
  std::string scheme(value.substr(0, space));
  std::transform(scheme.begin(), scheme.end(), scheme.begin(), [](unsigned char c) { return std::tolower(c); });
  std::string_view given = value.substr(space);
  while (!given.empty() && given.front() == ' ') given.remove_prefix(1);
  return scheme == "bearer" && ConstantTimeEqual(given, token);
}

HttpResponse Unauthorized() {
  HttpResponse r = JsonError(401, "this endpoint needs \"Authorization: Bearer <token>\"", "unauthorized");
  r.headers.emplace_back("WWW-Authenticate", "Bearer");
  return r;
}

}  // namespace fluidfaas::api
