-- wrk script of bench/intake.py: each request a distinct push delivery (project, branch,
-- assignment and commit vary), a bounded number of answers per thread, and a JSON summary.
-- Arguments after "--": body template path, webhook secret, projects, branches (comma list),
-- assignments (comma list), answers per thread, expected status, run tag (0-255), threads,
-- delivery key prefix.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local timespec = ffi.new("bench_timespec")

-- Microseconds on the monotonic clock: wrk's own duration is its whole -d even when every
-- thread stopped early at its answer limit, so the load's span is measured here.
local function now_us()
   ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
   return tonumber(timespec.tv_sec) * 1000000 + math.floor(tonumber(timespec.tv_nsec) / 1000)
end

local threads = {}
local next_thread_id = 0

function setup(thread)
   thread:set("thread_id", next_thread_id)
   next_thread_id = next_thread_id + 1
   table.insert(threads, thread)
end

local function split(text)
   local items = {}
   for item in string.gmatch(text, "[^,]+") do
      table.insert(items, item)
   end
   return items
end

function init(args)
   local file = assert(io.open(args[1], "rb"))
   template = file:read("*a")
   file:close()
   projects = tonumber(args[3])
   branches = split(args[4])
   assignments = split(args[5])
   limit = tonumber(args[6])
   expected = tonumber(args[7])
   run_tag = tonumber(args[8])
   thread_count = tonumber(args[9])
   key_prefix = args[10]
   sent, answered, unexpected = 0, 0, 0
   first_us, last_us = 0, 0
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   wrk.headers["X-Gitlab-Event"] = "Push Hook"
   wrk.headers["X-Gitlab-Token"] = args[2]
   wrk.headers["User-Agent"] = "GitLab/17.1.0"
end

function request()
   -- Consecutive numbers walk through projects first, so one branch of one project gets a
   -- newer push every projects * branches * assignments requests and supersedes its last run.
   local n = sent * thread_count + thread_id
   if sent == 0 then
      first_us = now_us()
   end
   sent = sent + 1
   local project = n % projects
   local branch = branches[math.floor(n / projects) % #branches + 1]
   local assignment = assignments[math.floor(n / (projects * #branches)) % #assignments + 1]
   local key = string.format("%02x%06x%08x", run_tag, thread_id, n)
   local values = {
      PROJECT_ID = tostring(100000 + project),
      PROJECT = string.format("student%05d", project),
      BRANCH = branch,
      ASSIGNMENT = assignment,
      AFTER = key .. "a1b2c3d4e5f6a7b8c9d0e1f2",
      KEY = key,
   }
   wrk.headers["Idempotency-Key"] = key_prefix .. key
   return wrk.format(nil, nil, nil, (string.gsub(template, "@(%u[%u_]*)@", values)))
end

function response(status, headers, body)
   answered = answered + 1
   last_us = now_us()
   if status ~= expected then
      unexpected = unexpected + 1
   end
   if answered >= limit then
      wrk.thread:stop()
   end
end

function done(summary, latency, requests)
   local unexpected_total, first, last = 0, math.huge, 0
   for _, thread in ipairs(threads) do
      unexpected_total = unexpected_total + thread:get("unexpected")
      first = math.min(first, thread:get("first_us"))
      last = math.max(last, thread:get("last_us"))
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
      '"max_us": %d, "connect_errors": %d, "read_errors": %d, "write_errors": %d, ' ..
      '"timeouts": %d, "status_errors": %d, "unexpected_status": %d}\n',
      summary.requests, last - first, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max, e.connect, e.read, e.write, e.timeout, e.status,
      unexpected_total))
end
