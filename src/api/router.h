// Router: dispatches a request by method and path to its handler, with `{}` segments of the pattern passed to the
// handler percent-decoded ("/v2/models/{}/versions/{}/infer"). A path that matches a route of another method is
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

// The path of a request target (the part before '?'), split into percent-decoded segments; InvalidArgument for a
// target that is not an absolute path or holds a bad escape.
Result<std::vector<std::string>> PathSegments(std::string_view target);

class Router {
 public:
  // `pattern`: an absolute path whose `{}` segments match any one non-empty segment.
  void Add(std::string method, std::string_view pattern, RouteHandler handler);
  void Handle(HttpRequest&& request, Responder responder) const;

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;  // "{}" for a parameter
    RouteHandler handler;
  };
  std::vector<Route> routes_;
};

}  // namespace fluidfaas::api
