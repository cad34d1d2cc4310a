-- wrk script: POST a binary-tensor-extension infer request (a JSON header, then 128 raw little-endian FP32 values
-- of 0.5), asking for the output as binary data too: what tritonclient.http sends by default.
local header = '{"inputs":[{"name":"input","datatype":"FP32","shape":[1,128],"parameters":{"binary_data_size":512}}],'
  .. '"parameters":{"binary_data_output":true}}'
wrk.method = "POST"
wrk.body = header .. string.rep("\0\0\0\63", 128)
wrk.headers["Content-Type"] = "application/octet-stream"
wrk.headers["Inference-Header-Content-Length"] = tostring(#header)
