-- wrk script of scripts/bench/intake: signed GitHub pushes, each with its own X-GitHub-Delivery.
-- Nothing is signed here: deferred-bench wrote one file of "signature<TAB>body" lines per wrk
-- thread (every body a different push, so no two requests are the same delivery or the same
-- signed body), and this only picks the next line. Prints one RESULT line for deferred-bench.
--   wrk -t2 -c32 -d15s -s intake.lua URL -- <bodies file prefix> [delivery id prefix (bench)]
-- Several wrk at once (three servers' bench) each give their own delivery id prefix.

local threads = {}
local count = 0

function setup(thread)
  count = count + 1
  thread:set("id", count)
  table.insert(threads, thread)
end

function init(args)
  signatures, bodies = {}, {}
  prefix = args[2] or "bench"
  math.randomseed(os.time() * 100 + id)
  for line in io.lines(args[1] .. "-" .. id) do
    local tab = line:find("\t", 1, true)
    signatures[#signatures + 1] = line:sub(1, tab - 1)
    bodies[#bodies + 1] = line:sub(tab + 1)
  end
  sent, accepted, refused, wrapped = 0, 0, 0, 0
end

-- GitHub's delivery ids are GUIDs, in no order: random digits first, as theirs, so the server's
-- index of delivery ids is written where a real one's is; the prefix, thread and count after them
-- keep every id unique.
local function delivery()
  return string.format("%08x-%04x-%s-%d-%d", math.random(0, 0x7fffffff), math.random(0, 0xffff), prefix, id, sent)
end

function request()
  sent = sent + 1
  local index = (sent - 1) % #bodies + 1
  if sent > #bodies then wrapped = wrapped + 1 end
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/json",
    ["X-GitHub-Event"] = "push",
    ["X-GitHub-Delivery"] = delivery(),
    ["X-Hub-Signature-256"] = signatures[index],
  }, bodies[index])
end

function response(status, headers, body)
  if status == 200 or status == 202 then accepted = accepted + 1 else refused = refused + 1 end
end

function done(summary, latency, requests)
  local accepted, refused, sent, wrapped = 0, 0, 0, 0
  for _, thread in ipairs(threads) do
    accepted = accepted + thread:get("accepted")
    refused = refused + thread:get("refused")
    sent = sent + thread:get("sent")
    wrapped = wrapped + thread:get("wrapped")
  end
  local errors = summary.errors
  io.write(string.format(
    "RESULT requests=%d seconds=%.3f accepted=%d refused=%d sent=%d wrapped=%d p50_us=%d p99_us=%d socket_errors=%d\n",
    summary.requests, summary.duration / 1e6, accepted, refused, sent, wrapped,
    latency:percentile(50), latency:percentile(99),
    errors.connect + errors.read + errors.write + errors.timeout))
end
