-- wrk: POST /v1/emails/send/ to user 1.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"user_id":1,"subject":"Benchmark","body":"Hi there!"}'

dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")
