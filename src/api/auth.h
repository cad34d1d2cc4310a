// Bearer-token authentication, shared by the node's API and the cluster gateway.
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "api/http_server.h"

namespace fluidfaas::api {

// Equal in time that depends only on the lengths: a token is not guessed byte by byte from response times.
bool ConstantTimeEqual(std::string_view a, std::string_view b);

// "Authorization: Bearer <token>", the scheme in any case (RFC 9110 11.1); always true when `token` is empty.
bool Authorized(const HttpRequest& req, const std::string& token);

// 401 {"error", "code": "unauthorized"} with WWW-Authenticate: Bearer.
HttpResponse Unauthorized();

}  // namespace fluidfaas::api
