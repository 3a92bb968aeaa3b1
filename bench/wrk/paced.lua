-- wrk script: the requests of a corpus file in a cycle, each connection
-- waiting an exponentially distributed time (mean MS) before each request:
-- with C connections the rate is about C / (MS + latency), for latency at
-- a fixed load below saturation.
--
--   wrk -s bench/wrk/paced.lua URL -- FILE MS

dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./")
       .. "requests.lua")

local mean = 10

function init_more(args)
   mean = tonumber(args[2]) or mean
end

function delay()
   return math.floor(-mean * math.log(1 - math.random()) + 0.5)
end
