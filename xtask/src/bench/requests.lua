-- requests.lua: the wrk script of `cargo xtask bench` (xtask/src/bench/tools.rs).
--
-- Sends the requests listed in a file (the script's argument), one a line, round
-- robin: tokens rotate, paths and bodies change per request, and nothing is formatted
-- while the clock runs (init renders every request once). A line is tab-separated:
--   METHOD <tab> PATH <tab> BODY (may be empty) <tab> Header: value <tab> ...
-- done() prints one machine-readable line for the xtask. once.lua, appended to this
-- file by the xtask, sends every line at most once instead.

requests = {}
count, next_index = 0, 0

function init(args)
  for line in io.lines(args[1]) do
    local fields = {}
    for field in (line .. "\t"):gmatch("([^\t]*)\t") do
      fields[#fields + 1] = field
    end
    local headers = {}
    for k = 4, #fields do
      local name, value = fields[k]:match("^([^:]+):%s*(.*)$")
      if name then
        headers[name] = value
      end
    end
    local body = fields[3]
    if body == "" then
      body = nil
    end
    count = count + 1
    requests[count] = wrk.format(fields[1], fields[2], headers, body)
  end
end

function request()
  next_index = next_index % count + 1
  return requests[next_index]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "FPBENCH requests=%d duration_us=%d status=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout))
end
