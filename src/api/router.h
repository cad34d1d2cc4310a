// Router: dispatches a request by method and path to its handler, with `{}` segments of the pattern passed to the
// handler percent-decoded ("/v2/models/{}/versions/{}/infer"). A route may also bound its bodies (BodyLimit, asked
// by the server once the headers are in, before the body is read). A path that matches a route of another method is
// answered 405 with Allow; no match, 404; a target that is not a path or a bad percent-escape, 400. Every such
// answer is {"error", "code"}.
//
// Thread safety: Add before serving; Handle from the server's loop thread (const).
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "api/http_server.h"

namespace fluidfaas::api {

using RouteParams = std::vector<std::string>;
using RouteHandler = std::function<void(HttpRequest&&, const RouteParams&, Responder)>;
// The largest body a route takes, from its parameters.
using RouteBodyLimit = std::function<size_t(const RouteParams&)>;

// The path of a request target (the part before '?'), split into percent-decoded segments; InvalidArgument for a
// target that is not an absolute path or holds a bad escape.
Result<std::vector<std::string>> PathSegments(std::string_view target);

class Router {
 public:
  // `pattern`: an absolute path whose `{}` segments match any one non-empty segment.
  // `body_limit`: the route's own bound on its bodies; none: BodyLimit's default.
  void Add(std::string method, std::string_view pattern, RouteHandler handler, RouteBodyLimit body_limit = nullptr);
  void Handle(HttpRequest&& request, Responder responder) const;
  // The body limit of the route `method` and `target` reach, or `fallback` (no such route, or none of its own).
  size_t BodyLimit(std::string_view method, std::string_view target, size_t fallback) const;

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;  // "{}" for a parameter
    RouteHandler handler;
    RouteBodyLimit body_limit;
  };
  // Whether `route` matches `segments`; its parameters in `params`.
  static bool Match(const Route& route, const std::vector<std::string>& segments, RouteParams& params);
  std::vector<Route> routes_;
};

}  // namespace fluidfaas::api
