// The generation routes of a node's HTTP surface (daemon/http_api.h), over Controller::Generate:
//
//   Triton's generate extension:
//     POST /v2/models/{m}[/versions/{v}]/generate         {"text_input", "max_tokens"?, "stop"?, "parameters"?}
//                                                        -> {"model_name", "model_version", "text_output", ...}
//     POST /v2/models/{m}[/versions/{v}]/generate_stream  the same, as server-sent events: one
//                                                        `data: {"model_name", "model_version", "text_output"}`
//                                                        per token
//   OpenAI-compatible:
//     POST /v1/completions        {"model", "prompt", "max_tokens"?, "temperature"?, "top_p"?, "stop"?, "stream"?}
//     POST /v1/chat/completions   {"model", "messages": [{"role", "content"}], ...the same}
//       non-streamed: the completion with "usage" (prompt, completion and total tokens); with "stream": true,
//       server-sent events of chunks, the last `data: [DONE]`.
//
// The tokenizer of zoo models is byte-level: a token is a byte of UTF-8 text (ids 0..255). max_tokens defaults to
// 16 (as OpenAI's completions do); temperature in [0, 2] and top_p in (0, 1] are checked and accepted, though the
// emulated executor's text is deterministic. `stop`: a string or up to 4, each 1..256 bytes: generation ends
// before the first of them (finish_reason "stop"; else "length"), and a stream holds back the bytes that could
// begin one. A streamed request's head is sent with its first token: a request refused before then gets its
// status and a JSON error like any other. A client that closes a stream stops its sequence (its KV cache is freed
// at the next step); a non-streamed request runs to its end.
//
// Errors: {"error", "code"} on /v2 routes; OpenAI's {"error": {"message", "type", "code"}} on /v1 routes. 400
// bad body or too long for the model, 404 unknown model, 429 the node's open requests at their limit, 503
// draining, stopping, or no slice of the node can hold the model.
//
// Thread safety: handlers run on the edge's loop thread; the controller's callbacks on its control thread.
#pragma once

#include "api/router.h"
#include "daemon/controller.h"

namespace fluidfaas::daemon {

// Adds the routes above. `max_body_bytes`: the most a generation request's body may hold.
void AddGenerateRoutes(api::Router& router, Controller& controller, size_t max_body_bytes);

}  // namespace fluidfaas::daemon
