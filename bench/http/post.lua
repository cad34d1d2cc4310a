-- wrk script: POST the body in BODY_FILE (default bench/http/bert_infer.json) as JSON on every request.
local path = os.getenv("BODY_FILE") or "bench/http/bert_infer.json"
local f = assert(io.open(path, "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
