-- once.lua: appended to requests.lua for one-time credentials (fresh enrollment
-- tokens, never-opened share links): every line is sent at most once, and when the
-- list runs out the thread stops, so the run ends early instead of measuring refusals
-- (the xtask reports such a run as cut short). Only this variant defines response():
-- with it wrk hands every response to Lua, which costs throughput.

exhausted = false

function request()
  if next_index >= count then
    exhausted = true
    return requests[count]
  end
  next_index = next_index + 1
  return requests[next_index]
end

function response()
  if exhausted then
    wrk.thread:stop()
  end
end
