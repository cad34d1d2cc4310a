#include "api/router.h"

namespace fluidfaas::api {
namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::vector<std::string> Split(std::string_view path) {
  std::vector<std::string> out;
  size_t at = 1;  // past the leading '/'
  while (at <= path.size()) {
    const size_t end = std::min(path.find('/', at), path.size());
    out.emplace_back(path.substr(at, end - at));
    at = end + 1;
  }
  return out;
}

}  // namespace

Result<std::vector<std::string>> PathSegments(std::string_view target) {
  const std::string_view path = target.substr(0, target.find('?'));
  if (path.empty() || path.front() != '/') return Status::InvalidArgument("the request target is not an absolute path");
  std::vector<std::string> segments = Split(path);
  for (std::string& s : segments) {
    std::string decoded;
    decoded.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] != '%') {
        decoded.push_back(s[i]);
        continue;
      }
      const int hi = i + 2 < s.size() ? HexDigit(s[i + 1]) : -1;
      const int lo = i + 2 < s.size() ? HexDigit(s[i + 2]) : -1;
      if (hi < 0 || lo < 0) return Status::InvalidArgument("a bad percent-escape in the request path");
      decoded.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    }
    s = std::move(decoded);
  }
  return segments;
}

void Router::Add(std::string method, std::string_view pattern, RouteHandler handler, RouteBodyLimit body_limit) {
  routes_.push_back(Route{std::move(method), Split(pattern), std::move(handler), std::move(body_limit)});
}

bool Router::Match(const Route& route, const std::vector<std::string>& segments, RouteParams& params) {
  params.clear();
  if (route.segments.size() != segments.size()) return false;
  for (size_t i = 0; i < route.segments.size(); ++i) {
    if (route.segments[i] == "{}") {
      if (segments[i].empty()) return false;
      params.push_back(segments[i]);
    } else if (route.segments[i] != segments[i]) {
      return false;
    }
  }
  return true;
}

size_t Router::BodyLimit(std::string_view method, std::string_view target, size_t fallback) const {
  auto segments = PathSegments(target);
  if (!segments.ok()) return fallback;
  RouteParams params;
  for (const Route& route : routes_) {
    if (route.method == method && Match(route, *segments, params)) {
      return route.body_limit ? route.body_limit(params) : fallback;
    }
  }
  return fallback;
}

void Router::Handle(HttpRequest&& request, Responder responder) const {
  auto segments = PathSegments(request.target);
  if (!segments.ok()) return responder.Send(JsonError(400, segments.status().message(), "bad_request"));
  std::string allow;
  RouteParams params;
  for (const Route& route : routes_) {
    if (!Match(route, *segments, params)) continue;
    if (route.method == request.method) return route.handler(std::move(request), params, std::move(responder));
    if (allow.find(route.method) == std::string::npos) allow += (allow.empty() ? "" : ", ") + route.method;
  }
  if (allow.empty()) return responder.Send(JsonError(404, "no such endpoint", "not_found"));
  HttpResponse r = JsonError(405, request.method + " is not allowed here; allowed: " + allow, "method_not_allowed");
  r.headers.emplace_back("Allow", allow);
  responder.Send(std::move(r));
}

}  // namespace fluidfaas::api
