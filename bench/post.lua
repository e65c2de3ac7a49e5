-- wrk script for the infer path: the same POST on every request.
-- No response() callback on purpose: defining one makes wrk parse every reply in Lua, which
-- costs CPU that the servers under test share with it.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"input":"My sister Maria lives in Madrid and loves her new job.","task":"sentiment"}'
