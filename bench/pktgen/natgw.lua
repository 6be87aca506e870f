-- pktgen-dpdk script: RFC 9693 benchmark of natgw, in two runs.
--
-- Port NATGW_INSIDE (default 0) is cabled to natgw's inside port, port
-- NATGW_OUTSIDE (default 1) to its outside port. Settings come from the
-- environment (defaults in brackets):
--
--   NATGW_PHASE        1: preliminary phase, 2: real test phase,     [1]
--                      3: real test phase, zero-loss binary search
--                      of the two-way rate (RFC 9693), written to
--                      NATGW_OUT/rfc9693-FLOWS.json
--   NATGW_SRC          first private source (pool member or default  [10.0.1.0]
--                      SNAT source of the natgw configuration)
--   NATGW_SOURCES      number of private sources                     [256]
--   NATGW_DST          first server address (198.18.0.0/16)          [198.18.0.1]
--   NATGW_DESTINATIONS number of servers                             [15]
--   NATGW_SPORT        first source port                             [1024]
--   NATGW_SPORTS       source ports per private source               [257]
--   NATGW_BLOCK        natgw's SNAT ports per member (no more        [1024]
--                      source ports than that per server)
--   NATGW_DPORT        server port                                   [5001]
--   NATGW_SIZE         frame size, FCS included                      [64]
--   NATGW_RATE         percent of line rate                          [10]
--   NATGW_DURATION     phase 2 length in seconds                     [30]
--   NATGW_DST_MAC      natgw's inside MAC (phase 1 and 2 forward)    [unset: pktgen's]
--   NATGW_TIMEOUT      seconds phase 1 may take before giving up     [600]
--   NATGW_STEP         phase 3: seconds per search step (RFC 9693:   [60]
--                      60; shorter for quick runs)
--   NATGW_LINK_MBPS    phase 3: link speed, to turn pps into pktgen's [10000]
--                      percent of line rate
--   NATGW_MAX_PPS      phase 3: highest two-way rate tried           [line rate, both ways]
--   NATGW_CAPACITY     phase 3: natgw's flow_capacity, for the report [2000000]
--   NATGW_OUT          phase 3: directory of the result              [.]
--
-- pktgen's range mode steps every field on every packet, each wrapping at
-- its own maximum, so the sequence repeats after lcm(sources, destinations,
-- ports) packets. With pairwise coprime counts (the defaults: 256, 15, 257)
-- that is their product and every combination is a distinct flow: 986,880
-- flows by default. The script refuses counts that aren't coprime.
--
-- Phase 1 (preliminary): sends each flow exactly once from the inside port,
-- so natgw creates every flow, and reports how many natgw forwarded. Then
-- fetch natgw's flow list and build the return pcap (README):
--   curl .../v1/flows?... | bench/trex/flows_to_csv.py > flows.csv
--   bench/pktgen/return_pcap.py --dst-mac <natgw outside MAC> -o return.pcap flows.csv
-- Phase 2 (real test): restart pktgen with "-s 1:return.pcap"; the inside
-- port sends the same flows continuously, the outside port replays the
-- return pcap in a loop; both directions are counted.
--
--   NATGW_PHASE=1 pktgen -l 0-4 -n 4 -- -P -m "[1:2].0,[3:4].1" -f bench/pktgen/natgw.lua
--   NATGW_PHASE=2 pktgen -l 0-4 -n 4 -- -P -m "[1:2].0,[3:4].1" -s 1:return.pcap -f bench/pktgen/natgw.lua
--
-- Phase 3 is phase 2 as RFC 9693 measures it: a zero-loss binary search
-- of the two-way rate (half from each port, at once), and the same search
-- allowing 0.5 % loss (PDR), each step
-- NATGW_STEP seconds, the result in the fields of the in-VM harness's
-- report (bench/benchharness report9693.go: throughput_pps,
-- throughput_steps, ...), so `benchharness report9693 -dir NATGW_OUT`
-- reads it. What pktgen can't do, and phase 3 leaves out (zero in the
-- file, said in its notes): the connection establishment rate as CSIT
-- counts it (pktgen can't answer a translated first packet, and loads its
-- return pcap only at start, so it can't replay the replies of a fresh
-- fill); latency percentiles (pktgen's Lua API gives per-port counters,
-- not per-packet latencies); the tear-down rate. Use
-- bench/trex/trex_rfc9693.py for those.

local natgw = {}

-- env returns the environment variable name, or default when unset.
local function env(name, default)
	local v = os.getenv(name)
	if v == nil or v == "" then
		return default
	end
	return v
end

-- number returns an integer setting, or raises an error naming it.
local function number(name, default, min, max)
	local v = math.tointeger(tonumber(env(name, tostring(default))))
	if v == nil or v < min or v > max then
		error(string.format("%s must be an integer from %d to %d", name, min, max))
	end
	return v
end

-- ip2num parses a dotted IPv4 address, or raises an error naming what.
function natgw.ip2num(s, what)
	local a, b, c, d = string.match(s, "^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
	local n = 0
	for _, part in ipairs({ a, b, c, d }) do
		local v = tonumber(part)
		if v == nil or v > 255 then
			error(string.format("%s: %q is not an IPv4 address", what, s))
		end
		n = n * 256 + v
	end
	return n
end

-- num2ip formats an address number in dotted form.
function natgw.num2ip(n)
	return string.format("%d.%d.%d.%d", (n >> 24) & 255, (n >> 16) & 255, (n >> 8) & 255, n & 255)
end

-- gcd returns the greatest common divisor of a and b.
function natgw.gcd(a, b)
	while b ~= 0 do
		a, b = b, a % b
	end
	return a
end

-- settings reads and checks the environment; it raises an error naming
-- the first bad setting.
function natgw.settings()
	local s = {
		phase = number("NATGW_PHASE", 1, 1, 3),
		inside = tostring(number("NATGW_INSIDE", 0, 0, 63)),
		outside = tostring(number("NATGW_OUTSIDE", 1, 0, 63)),
		src = natgw.ip2num(env("NATGW_SRC", "10.0.1.0"), "NATGW_SRC"),
		sources = number("NATGW_SOURCES", 256, 1, 1 << 24),
		dst = natgw.ip2num(env("NATGW_DST", "198.18.0.1"), "NATGW_DST"),
		destinations = number("NATGW_DESTINATIONS", 15, 1, 65536),
		sport = number("NATGW_SPORT", 1024, 1, 65535),
		sports = number("NATGW_SPORTS", 257, 1, 65535),
		block = number("NATGW_BLOCK", 1024, 8, 64512),
		dport = number("NATGW_DPORT", 5001, 1, 65535),
		size = number("NATGW_SIZE", 64, 64, 9216),
		rate = number("NATGW_RATE", 10, 1, 100),
		duration = number("NATGW_DURATION", 30, 1, 86400),
		timeout = number("NATGW_TIMEOUT", 600, 1, 86400),
		dst_mac = env("NATGW_DST_MAC", nil),
		step = number("NATGW_STEP", 60, 1, 3600),
		link_mbps = number("NATGW_LINK_MBPS", 10000, 1, 1000000),
		capacity = number("NATGW_CAPACITY", 2000000, 1, 1 << 32),
		out = env("NATGW_OUT", "."),
	}
	-- Frames per second of one port at line rate: the frame, preamble
	-- and inter-frame gap (20 bytes) on the wire.
	s.line_pps = s.link_mbps * 1000000 // ((s.size + 20) * 8)
	s.max_pps = number("NATGW_MAX_PPS", 2 * s.line_pps, 1000, 1 << 40)
	if s.inside == s.outside then
		error("NATGW_INSIDE and NATGW_OUTSIDE must be different ports")
	end
	if s.src >> 24 ~= 10 or (s.src + s.sources - 1) >> 24 ~= 10 then
		error("the private sources must be in 10.0.0.0/8")
	end
	local servers = natgw.ip2num("198.18.0.0", "servers")
	if s.dst >> 16 ~= servers >> 16 or (s.dst + s.destinations - 1) >> 16 ~= servers >> 16 then
		error("the servers must be in 198.18.0.0/16")
	end
	if s.sport + s.sports - 1 > 65535 then
		error("NATGW_SPORT + NATGW_SPORTS goes past port 65535")
	end
	if s.sports > s.block then
		error(string.format("NATGW_SPORTS %d exceeds natgw's block of %d ports (NATGW_BLOCK): " ..
			"natgw would drop the rest as port_exhausted", s.sports, s.block))
	end
	if natgw.gcd(s.sources, s.destinations) ~= 1 or natgw.gcd(s.sources, s.sports) ~= 1
		or natgw.gcd(s.destinations, s.sports) ~= 1 then
		error("NATGW_SOURCES, NATGW_DESTINATIONS and NATGW_SPORTS must be pairwise coprime " ..
			"(pktgen steps all three together): try 256, 15 and 257")
	end
	s.flows = s.sources * s.destinations * s.sports
	return s
end

-- range sets one pktgen range field: start at min, step inc, wrap at max.
local function range(field, port, min, max, inc)
	field(port, "start", min)
	field(port, "min", min)
	field(port, "max", max)
	field(port, "inc", inc)
end

-- forward sets the inside port up to send the flows in range mode.
function natgw.forward(s)
	local p = s.inside
	pktgen.set_proto(p, "udp")
	pktgen.range.ip_proto(p, "udp")
	if s.dst_mac ~= nil then
		pktgen.range.dst_mac(p, "start", s.dst_mac)
	end
	range(pktgen.range.src_ip, p, natgw.num2ip(s.src), natgw.num2ip(s.src + s.sources - 1),
		s.sources > 1 and "0.0.0.1" or "0.0.0.0")
	range(pktgen.range.dst_ip, p, natgw.num2ip(s.dst), natgw.num2ip(s.dst + s.destinations - 1),
		s.destinations > 1 and "0.0.0.1" or "0.0.0.0")
	range(pktgen.range.src_port, p, s.sport, s.sport + s.sports - 1, s.sports > 1 and 1 or 0)
	range(pktgen.range.dst_port, p, s.dport, s.dport, 0)
	range(pktgen.range.pkt_size, p, s.size, s.size, 0)
	pktgen.set(p, "rate", s.rate)
	pktgen.set_range(p, "on")
end

-- stats returns the transmitted and received packet counts of a port.
local function stats(port)
	local st = pktgen.portStats(port, "port")[tonumber(port)]
	return st.opackets, st.ipackets
end

-- preliminary sends every flow once and reports what natgw forwarded.
function natgw.preliminary(s)
	natgw.forward(s)
	pktgen.set(s.inside, "count", s.flows)
	pktgen.clr()
	printf("natgw phase 1: %d flows (%d sources x %d servers x %d ports) at %d%% of line rate\n",
		s.flows, s.sources, s.destinations, s.sports, s.rate)
	pktgen.start(s.inside)
	local waited = 0
	while stats(s.inside) < s.flows and waited < s.timeout * 1000 do
		pktgen.delay(100)
		waited = waited + 100
	end
	pktgen.delay(1000) -- let the last packets through natgw
	pktgen.stop(s.inside)
	local tx = stats(s.inside)
	local _, rx = stats(s.outside)
	printf("natgw phase 1: sent %d, natgw forwarded %d, lost %d (%.4f%%) in about %d ms\n",
		tx, rx, tx - rx, tx > 0 and 100 * (tx - rx) / tx or 0, waited)
	if tx < s.flows then
		printf("natgw phase 1: timed out before sending every flow (NATGW_TIMEOUT)\n")
	end
	printf("natgw phase 1: now fetch the flow list and write the return pcap (see the README)\n")
end

-- test runs the real test phase: flows forward, the pcap back.
function natgw.test(s)
	natgw.forward(s)
	pktgen.set(s.inside, "count", 0)
	pktgen.set(s.outside, "rate", s.rate)
	pktgen.pcap(s.outside, "on")
	pktgen.clr()
	printf("natgw phase 2: %d flows forward, return pcap back, %d s at %d%% of line rate\n",
		s.flows, s.duration, s.rate)
	pktgen.start(s.inside .. "," .. s.outside)
	pktgen.delay(s.duration * 1000)
	pktgen.stop(s.inside .. "," .. s.outside)
	pktgen.delay(1000)
	local in_tx, in_rx = stats(s.inside)
	local out_tx, out_rx = stats(s.outside)
	printf("natgw phase 2: outbound sent %d, received %d, lost %d (%.2f Mpps received)\n",
		in_tx, out_rx, in_tx - out_rx, out_rx / s.duration / 1e6)
	printf("natgw phase 2: inbound sent %d, received %d, lost %d (%.2f Mpps received)\n",
		out_tx, in_rx, out_tx - in_rx, in_rx / s.duration / 1e6)
end

-- binary_search returns the highest rate in [lo, hi] at which trial
-- passes and the steps, as the harness's binarySearch (gen.go): hi first,
-- then lo, then halving the interval between the highest passing and the
-- lowest failing rate until it is at most resolution wide. trial(rate)
-- returns a step (natgw.search_step); a step the generator could not
-- offer fails. The rate is 0 when even lo fails.
function natgw.binary_search(lo, hi, resolution, trial)
	if lo <= 0 or hi < lo or resolution <= 0 then
		error(string.format("binary search: bad bounds lo %s hi %s resolution %s", lo, hi, resolution))
	end
	local steps = {}
	local function passes(rate)
		local st = trial(rate)
		st.rate_pps = rate
		steps[#steps + 1] = st
		return st.pass and not st.generator_limited
	end
	if passes(hi) then
		return hi, steps
	end
	if not passes(lo) then
		return 0, steps
	end
	local good, bad = lo, hi
	while bad - good > resolution do
		local mid = good + (bad - good) // 2
		if passes(mid) then
			good = mid
		else
			bad = mid
		end
	end
	return good, steps
end

-- pdr_loss is the loss ratio of the PDR search (CSIT's partial drop
-- rate, the harness's pdrLoss).
natgw.pdr_loss = 0.005

-- search_step returns one step in the harness's searchStep fields:
-- offered frames, received translated, seconds; a generator that sent
-- less than 99.9 % of due was limited.
function natgw.search_step(offered, received, seconds, due)
	local lost = offered > received and offered - received or 0
	local st = { rate_pps = 0, pass = lost == 0, lost = lost, offered = offered, seconds = seconds }
	if due ~= nil and offered < 0.999 * due then
		st.generator_limited = true
	end
	return st
end

-- json encodes a value: tables with a first element (or marked empty
-- arrays, natgw.array) as arrays, other tables as objects with sorted keys.
natgw.array = setmetatable({}, { __mode = "k" })
function natgw.json(v)
	local t = type(v)
	if t == "nil" then
		return "null"
	elseif t == "boolean" then
		return tostring(v)
	elseif t == "number" then
		if math.type(v) == "integer" then
			return string.format("%d", v)
		end
		if v ~= v or v == math.huge or v == -math.huge then
			error("json: " .. tostring(v) .. " is not a JSON number")
		end
		return string.format("%.17g", v)
	elseif t == "string" then
		return '"' .. v:gsub('[%c"\\]', function(c)
			return string.format("\\u%04x", c:byte())
		end) .. '"'
	elseif t == "table" then
		local parts = {}
		if v[1] ~= nil or natgw.array[v] then
			for _, x in ipairs(v) do
				parts[#parts + 1] = natgw.json(x)
			end
			return "[" .. table.concat(parts, ",") .. "]"
		end
		local keys = {}
		for k in pairs(v) do
			keys[#keys + 1] = tostring(k)
		end
		table.sort(keys)
		for _, k in ipairs(keys) do
			parts[#parts + 1] = natgw.json(k) .. ":" .. natgw.json(v[k])
		end
		return "{" .. table.concat(parts, ",") .. "}"
	end
	error("json: can't encode a " .. t)
end

-- empty returns an empty JSON array.
local function empty()
	local a = {}
	natgw.array[a] = true
	return a
end

-- percent returns pktgen's rate (percent of line rate) for pps frames per
-- second on one port.
function natgw.percent(s, pps)
	return 100 * pps / s.line_pps
end

-- search runs the real test phase as a zero-loss binary search of the
-- two-way rate and writes the result.
function natgw.search(s)
	natgw.forward(s)
	pktgen.set(s.inside, "count", 0)
	pktgen.pcap(s.outside, "on")
	local both = s.inside .. "," .. s.outside
	printf("natgw phase 3: %d flows, zero-loss search up to %d pps two-way, %d s steps\n",
		s.flows, s.max_pps, s.step)
	local highest, t0 = 0, os.time()
	local function trial(rate)
		local pct = natgw.percent(s, rate / 2)
		pktgen.set(s.inside, "rate", pct)
		pktgen.set(s.outside, "rate", pct)
		local in_tx0, in_rx0 = stats(s.inside)
		local out_tx0, out_rx0 = stats(s.outside)
		pktgen.start(both)
		pktgen.delay(s.step * 1000)
		pktgen.stop(both)
		pktgen.delay(1000) -- frames in flight
		local in_tx, in_rx = stats(s.inside)
		local out_tx, out_rx = stats(s.outside)
		local offered = (in_tx - in_tx0) + (out_tx - out_tx0)
		local received = (out_rx - out_rx0) + (in_rx - in_rx0)
		if offered / s.step > highest then
			highest = offered / s.step
		end
		local st = natgw.search_step(offered, received, s.step, rate * s.step)
		printf("natgw phase 3: %d pps two-way (%.3f%% of line rate each way): offered %d, received %d, pass %s\n",
			rate, pct, offered, received, tostring(st.pass and not st.generator_limited))
		return st
	end
	local lo = math.max(1000, s.max_pps // 256)
	local tput, steps = natgw.binary_search(lo, s.max_pps, math.max(1, s.max_pps // 100), trial)
	-- CSIT's PDR beside it, as the harness reports: at most 0.5 % lost.
	local pdr, pdr_steps = natgw.binary_search(lo, s.max_pps, math.max(1, s.max_pps // 100), function(rate)
		local st = trial(rate)
		st.pass = st.offered > 0 and st.lost <= natgw.pdr_loss * st.offered
		return st
	end)
	local run = {
		flows = s.flows, flow_capacity = s.capacity, sources = s.sources, step_s = s.step,
		worker_cpu = -1, generator_cpu = -1, ring_size = 0, eal_args = empty(),
		connections_per_s = 0, connection_steps = empty(), throughput_pps = tput, throughput_steps = steps,
		generator_max_offered_pps = math.floor(highest), pdr_pps = pdr, pdr_steps = pdr_steps, latency = empty(),
		translator_bytes = 0, go_heap_bytes = 0, seconds = os.difftime(os.time(), t0),
		generator = "pktgen-dpdk, natgw.lua phase 3",
		notes = { "connections_per_s, latency and tear-downs not measured: pktgen can't answer a translated " ..
			"first packet nor give per-packet latencies (use bench/trex/trex_rfc9693.py)" },
	}
	local path = s.out .. "/rfc9693-" .. s.flows .. ".json"
	local f, err = io.open(path, "w")
	if f == nil then
		error("natgw phase 3: " .. tostring(err))
	end
	f:write(natgw.json(run), "\n")
	f:close()
	printf("natgw phase 3: two-way zero-loss throughput %d pps; wrote %s\n", tput, path)
	return run
end

-- main runs the phase NATGW_PHASE chooses.
function natgw.main()
	local s = natgw.settings()
	if s.phase == 1 then
		natgw.preliminary(s)
	elseif s.phase == 2 then
		natgw.test(s)
	else
		natgw.search(s)
	end
end

-- Run when pktgen loads the script; a test harness that only wants the
-- functions sets NATGW_LUA_NO_MAIN.
if os.getenv("NATGW_LUA_NO_MAIN") == nil then
	natgw.main()
end

return natgw
