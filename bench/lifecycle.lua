-- wrk script for bench/lifecycle.py: each connection (one per thread) drives whole cases in turn:
-- submit -> accept -> review -> approve (every fifth case: deny). bench/lifecycle.py prepends the
-- tokens, the submission body and the acceptance body as globals: TOKENS (enterprise, acceptor,
-- reviewer, approver), BODY and ACCEPT (容缺受理 of the required materials: none are uploaded).
step = 0        -- 0 submit, 1 accept, 2 review, 3 decide
app = nil
started = 0     -- cases started by this thread
completed = 0   -- cases decided
failures = 0    -- unexpected answers (the case is abandoned)
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

local function post(path, role, body)
  return wrk.format("POST", path, {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. TOKENS[role],
  }, body)
end

function request()
  if step == 0 then
    return post("/api/v1/applications", "enterprise", BODY)
  end
  local base = "/api/v1/applications/" .. app
  if step == 1 then
    return post(base .. "/accept", "acceptor", ACCEPT)
  elseif step == 2 then
    return post(base .. "/review", "reviewer", '{"opinion":"材料齐全，符合条件"}')
  elseif started % 5 == 0 then
    return post(base .. "/deny", "approver", '{"reason":"不符合许可条件"}')
  end
  return post(base .. "/approve", "approver", '{"opinion":"同意"}')
end

function response(status, headers, body)
  if step == 0 then
    if status ~= 201 then
      failures = failures + 1
      return
    end
    app = string.match(body, '"id"%s*:%s*"([%x%-]+)"')
    started = started + 1
    step = 1
  elseif status ~= 200 then
    failures = failures + 1
    step = 0
  elseif step == 3 then
    completed = completed + 1
    step = 0
  else
    step = step + 1
  end
end

function done(summary, latency, requests)
  local c, f = 0, 0
  for _, thread in ipairs(threads) do
    c = c + thread:get("completed")
    f = f + thread:get("failures")
  end
  io.write(string.format(
    "COMPLETED %d\nFAILURES %d\nP50 %f\nP99 %f\nREQUESTS %d\nSECONDS %f\n",
    c, f, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests, summary.duration / 1e6))
end
