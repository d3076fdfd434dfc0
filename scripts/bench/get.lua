-- wrk: plain GETs of the URL given.

dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")
