-- wrk script for the infer path proper: every request's input differs (a counter), so neither
-- the response cache nor coalescing of identical in-flight requests can share work between them.
-- No response() callback on purpose: parsing replies in Lua costs CPU the servers share with wrk.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local counter = 0
local prefix = '{"task":"sentiment","input":"My sister Maria lives in Madrid and loves her new job. #'
request = function()
  counter = counter + 1
  -- nil headers: wrk.headers, which carry the key and Cache-Control given with -H.
  return wrk.format(nil, nil, nil, prefix .. counter .. '"}')
end
