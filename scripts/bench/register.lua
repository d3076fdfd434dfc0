-- wrk: POST /v1/register/ with a unique email per request, optionally paced.
-- Pacing: WRK_DELAY_MS in the environment is the pause between a connection's requests.
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("id", thread_id)
  thread_id = thread_id + 1
  table.insert(threads, thread)
end

function init(args)
  run = os.getenv("BENCH_RUN") or tostring(os.time())
  pause = tonumber(os.getenv("WRK_DELAY_MS") or "0")
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"email":"bench-%s-%d-%d@example.com","first_name":"Bench","last_name":"User","password":"x"}',
    run, id, counter)
  return wrk.format(nil, nil, nil, body)
end

function delay()
  return pause
end

dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")
