-- wrk: GETs of BENCH_PATH with "{id}" replaced by a random user id up to BENCH_MAX_ID, so the
-- reads spread over the whole table (a seeded history included) rather than one cached row.
-- Every 50th user is skipped: in a seeded history (scripts/bench/seed.py) it deleted its account.
local path = os.getenv("BENCH_PATH")
local max_id = tonumber(os.getenv("BENCH_MAX_ID"))

function request()
  local id = math.random(1, max_id)
  if id % 50 == 0 then id = id - 1 end
  if id < 1 then id = 1 end
  return wrk.format("GET", (path:gsub("{id}", tostring(id))))
end

dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")
