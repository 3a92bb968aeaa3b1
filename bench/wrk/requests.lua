-- wrk script: POSTs the requests of a corpus file (bench/corpus.pl) in a
-- cycle, each thread from its own offset, with the headers an Agent sends.
--
--   wrk -s bench/wrk/requests.lua URL -- FILE
--
-- paced.lua builds on it.  done() prints one "wrk key=value ..." line for
-- bench/bench.pl.

local reqs = {}
local idx = 1

function setup(thread)
   thread:set("id", counter or 0)
   counter = (counter or 0) + 1
end

function init(args)
   local f = assert(io.open(args[1], "rb"))

   while true do
      local line = f:read("*l")
      if not line then break end

      local kind, uri, enc, len = line:match("^(%S+) (%S+) (%S+) (%d+)")
      local body = f:read(tonumber(len))
      local headers = {
         ["Content-Type"] = "application/json",
         ["DD-API-KEY"] = "0123456789abcdef0123456789abcdef",
         ["User-Agent"] = "datadog-agent/7.52.0",
      }

      if enc ~= "identity" then
         headers["Content-Encoding"] = enc
      end

      reqs[#reqs + 1] = wrk.format("POST", uri, headers, body)
   end

   f:close()

   math.randomseed(42 + id)
   idx = (id * 7919) % #reqs + 1

   if init_more then
      init_more(args)
   end
end

function request()
   local r = reqs[idx]
   idx = idx % #reqs + 1
   return r
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "wrk requests=%d duration_us=%d bytes=%d status_errors=%d " ..
      "connect_errors=%d read_errors=%d write_errors=%d timeouts=%d " ..
      "p50_us=%d p90_us=%d p99_us=%d p999_us=%d mean_us=%.1f max_us=%d\n",
      summary.requests, summary.duration, summary.bytes, e.status,
      e.connect, e.read, e.write, e.timeout,
      latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency:percentile(99.9),
      latency.mean, latency.max))
end
