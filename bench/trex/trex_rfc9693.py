#!/usr/bin/env python3
"""RFC 9693 benchmark of natgw with TRex (stateless API), the two phases.

Runs on the TRex host against a running TRex server (port --inside cabled
to natgw's inside port, --outside to its outside port) and natgw's
management API (--natgw, for its metrics and flow list). For one flow
count it measures what `make bench`'s harness measures and writes
DIR/rfc9693-FLOWS.json with the same fields (rfc9693.py), so
`benchharness report9693 -dir DIR` turns bare-metal runs into the same
report and charts:

  connections_per_s  zero-loss binary search of phase 1's rate. A step
                     waits until natgw's table is empty (natgw_flows_active
                     0: configure a short UDP timeout), sends every flow's
                     first packet once from inside at the rate (a single
                     burst, RFC 4814 port ranges enumerated with chained
                     field-engine counters), reads natgw's flow list,
                     then sends every flow's reply from outside at the
                     same rate (a pcap of the replies, pushed from the
                     TRex host). The step passes when every first packet
                     came out and every reply came back in: a connection
                     counts only when its reply was translated. Unlike the
                     harness, a reply is sent after the whole burst, not
                     at once when its first packet came out: TRex's
                     stateless mode cannot answer; the inbound half runs
                     at the same rate but in its own burst.
  throughput_pps     phase 2 after a phase 1 fill: half the rate from
                     inside (RFC 4814 pseudorandom ports within the
                     ranges of phase 1, field engine op "random"), half
                     from outside (the replies' pcap in a loop), at once;
                     zero-loss binary search of the two-way rate.
  pdr_pps            the same search passing at most 0.5 % loss (CSIT's
                     partial drop rate, as the harness reports beside the
                     zero-loss throughput).
  latency            phase 2 at 10, 50 and 90 % of the throughput with a
                     latency stream (STLFlowLatencyStats, TRex's
                     timestamps) outbound only: the outside port replays
                     the replies' pcap, which TRex does not mix with
                     streams on one port. p50/p99/p99.9 from TRex's
                     histogram, whose buckets have one significant digit:
                     upper bounds that coarse. The harness times every
                     frame of both directions.
  teardown           (not in the harness's rfcRun yet: its report says
                     "not measured") the tear-down rate under load: with
                     half the throughput flowing from inside on 1024 other
                     flows, the N flows are created once and idle out;
                     natgw_flows_expired_total{reason="idle"}, sampled
                     every --sample s, gives N / T_N, a lower bound (T_N
                     is bracketed by samples). Needs --udp-timeout.

Not measured: natgw's memory (read it on natgw's host; translator_bytes
stays 0).

    trex_rfc9693.py --flows 65536 --sources 64 --natgw http://NATGW:9650 \\
        --natgw-mac 3c:fd:fe:00:00:01 --natgw-outside-mac 3c:fd:fe:00:00:02 \\
        --max-rate 20000000 --step 60 --out bench/results/trex

Steps of 60 s are RFC 9693's reference; shorter (--step) for quick runs,
as the report states.
"""

import argparse
import importlib.util
import ipaddress
import os
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import rfc9693  # noqa: E402  (a sibling module, not an installed package)


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


flows_to_csv = _load("flows_to_csv", os.path.join(HERE, "flows_to_csv.py"))
return_pcap = _load("return_pcap", os.path.join(HERE, "..", "pktgen", "return_pcap.py"))

SERVER = "198.18.0.1"
LATENCY_PG = 9001
LATENCY_PPS = 10000


class Natgw(object):
    """natgw's management API: metrics and the flow list."""

    def __init__(self, url, timeout=30):
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=self.timeout) as r:
            return r.read().decode()

    def flows_active(self):
        """Returns natgw_flows_active summed over workers and protocols."""
        v = rfc9693.metric_sum(self._get("/metrics"), "natgw_flows_active")
        if v is None:
            raise rfc9693.MethodError("natgw's /metrics has no natgw_flows_active")
        return int(v)

    def expired_idle(self):
        """Returns natgw_flows_expired_total{reason="idle"} summed."""
        v = rfc9693.metric_sum(self._get("/metrics"), "natgw_flows_expired_total", {"reason": "idle"})
        return int(v or 0)

    def wait_empty(self, deadline_s):
        """Waits until natgw's table is empty, or raises after deadline_s."""
        end = time.time() + deadline_s
        while True:
            n = self.flows_active()
            if n == 0:
                return
            if time.time() > end:
                raise rfc9693.MethodError("natgw still has %d flows after %d s: is its UDP timeout "
                                          "short?" % (n, deadline_s))
            time.sleep(1)

    def flow_list(self, sources, limit=100000):
        """Returns natgw's UDP flows of the private sources as CSV rows.

        The API answers at most limit flows a request, one request per
        source: a source with that many is an error (the list would be cut
        short), and the run needs more sources."""
        rows = []
        for s in sources:
            got, _ = flows_to_csv.convert(self._get("/v1/flows?private=%s&limit=%d" % (s, limit)), protocol="udp")
            if len(got) >= limit:
                raise rfc9693.MethodError("natgw lists %d flows or more for %s: the API's limit; use more "
                                          "--sources" % (limit, s))
            rows += got
        return rows


class Plan(object):
    """The flows of one run: sources x source ports x destination ports."""

    def background(self, opts):
        """Returns the plan of the tear-down test's background load: 1024
        flows of one source after this plan's, which the load keeps busy
        while this plan's flows expire."""
        o = argparse.Namespace(**dict(vars(opts), flows=1024, sources=1, sports=1024,
                                      src=str(ipaddress.IPv4Address(self.src_first) + self.sources)))
        return Plan(o)

    def __init__(self, opts):
        self.flows, self.sources = opts.flows, opts.sources
        sports = opts.sports or rfc9693.choose_sports(opts.flows, opts.sources, opts.block)
        self.ranges = rfc9693.rfc4814_ranges(opts.flows, opts.sources, sports, opts.sport_lo,
                                             opts.dport_lo, opts.block)
        first = ipaddress.IPv4Address(opts.src)
        if not ipaddress.ip_network("10.0.0.0/8").supernet_of(
                ipaddress.ip_network("%s/32" % (first + opts.sources - 1))) or first not in ipaddress.ip_network("10.0.0.0/8"):
            raise rfc9693.MethodError("the sources %s + %d must be in 10.0.0.0/8" % (first, opts.sources))
        self.src_first = str(first)
        self.source_list = [str(first + i) for i in range(opts.sources)]


def forward_stream(api, plan, opts, phase, pps):
    """Returns the inside stream: phase 1 enumerates every flow once
    (counters chained with next_var: destination port, then source port,
    then source), phase 2 picks each field at random within its range
    (RFC 4814), which only hits flows phase 1 created."""
    r = plan.ranges
    op = "inc" if phase == 1 else "random"
    pkt = api.Ether(dst=opts.natgw_mac) / api.IP(src=plan.src_first, dst=SERVER, ttl=64) / \
        api.UDP(sport=r["sport_min"], dport=r["dport_min"], chksum=0)
    pkt = pkt / (b"\x00" * max(0, opts.size - 4 - len(pkt)))
    chain = {"next_var": "sport"} if phase == 1 else {}
    chain_src = {"next_var": "src"} if phase == 1 else {}
    vm = api.STLScVmRaw([
        api.STLVmFlowVar(name="dport", min_value=r["dport_min"], max_value=r["dport_max"], size=2, op=op, **chain),
        api.STLVmFlowVar(name="sport", min_value=r["sport_min"], max_value=r["sport_max"], size=2, op=op, **chain_src),
        api.STLVmFlowVar(name="src", min_value=_ip2int(plan.src_first),
                         max_value=_ip2int(plan.src_first) + plan.sources - 1, size=4, op=op),
        api.STLVmWrFlowVar(fv_name="dport", pkt_offset="UDP.dport"),
        api.STLVmWrFlowVar(fv_name="sport", pkt_offset="UDP.sport"),
        api.STLVmWrFlowVar(fv_name="src", pkt_offset="IP.src"),
        api.STLVmFixIpv4(offset="IP"),
    ])
    if phase == 1:
        mode = api.STLTXSingleBurst(pps=pps, total_pkts=plan.flows)
    else:
        mode = api.STLTXCont(pps=pps)
    return api.STLStream(name="natgw_phase%d" % phase, packet=api.STLPktBuilder(pkt=pkt, vm=vm), mode=mode)


def _ip2int(text):
    a, b, c, d = (int(x) for x in text.split("."))
    return a << 24 | b << 16 | c << 8 | d


class TRex(object):
    """The TRex side of the method: streams, pushes and counters."""

    def __init__(self, api, client, plan, opts):
        self.api, self.c, self.plan, self.o = api, client, plan, opts
        self.ports = [opts.inside, opts.outside]
        self.pcap_frames = 0

    def _counts(self):
        st = self.c.get_stats(ports=self.ports)
        return {p: (st[p]["opackets"], st[p]["ipackets"]) for p in self.ports}

    def fill(self, rate):
        """Phase 1 outbound half: every flow's first packet once at rate;
        returns (sent, received outside, seconds)."""
        i, o = self.o.inside, self.o.outside
        self.c.reset(ports=self.ports)
        self.c.add_streams([forward_stream(self.api, self.plan, self.o, 1, rate)], ports=[i])
        before = self._counts()
        t0 = time.time()
        self.c.start(ports=[i], force=True)
        self.c.wait_on_traffic(ports=[i])
        time.sleep(self.o.drain)
        after = self._counts()
        return after[i][0] - before[i][0], after[o][1] - before[o][1], time.time() - t0

    def reply_pcap(self, rows):
        """Writes the replies of natgw's flows as a pcap; returns its path."""
        fd, csv_path = tempfile.mkstemp(suffix=".csv")
        with os.fdopen(fd, "w") as f:
            f.write(flows_to_csv.CSV_HEADER + "\n" + "\n".join(rows) + "\n")
        self.pcap_frames = len(rows)
        pcap = os.path.join(self.o.pcap_dir, "natgw-replies.pcap")
        if return_pcap.main(["-o", pcap, "--dst-mac", self.o.natgw_outside_mac, "--size", str(self.o.size), csv_path]):
            raise rfc9693.MethodError("return_pcap could not write %s" % pcap)
        os.unlink(csv_path)
        return pcap

    def replies(self, pcap, rate, count=1, duration=-1):
        """Pushes the replies' pcap from outside at rate packets/s (count
        times, or looping for duration s); returns (sent, received inside)."""
        i, o = self.o.inside, self.o.outside
        before = self._counts()
        self.c.push_remote(pcap, ports=[o], ipg_usec=1e6 / rate, count=count, duration=duration, force=True)
        self.c.wait_on_traffic(ports=[o])
        time.sleep(self.o.drain)
        after = self._counts()
        return after[o][0] - before[o][0], after[i][1] - before[i][1]

    def latency_stream(self):
        """Returns the latency stream: out of the inside port on the first
        flow. The outside port replays the replies' pcap, and TRex does
        not mix a pcap replay with streams on one port, so the inbound
        direction carries load but no latency stream."""
        api, r = self.api, self.plan.ranges
        pad = b"\x00" * max(16, self.o.size - 4 - 42)
        out = api.Ether(dst=self.o.natgw_mac) / api.IP(src=self.plan.src_first, dst=SERVER, ttl=64) / \
            api.UDP(sport=r["sport_min"], dport=r["dport_min"]) / pad
        return api.STLStream(name="natgw_latency", packet=api.STLPktBuilder(pkt=out),
                             mode=api.STLTXCont(pps=LATENCY_PPS),
                             flow_stats=api.STLFlowLatencyStats(pg_id=LATENCY_PG))

    def traffic(self, pcap, rate, seconds, latency=False):
        """Phase 2: rate frames/s in all, half each way, for seconds, with
        the latency stream when latency. Returns (offered, received,
        TRex's pgid stats or None)."""
        i, o = self.o.inside, self.o.outside
        half = max(1, rate // 2)
        self.c.reset(ports=self.ports)
        streams = [forward_stream(self.api, self.plan, self.o, 2, half)]
        if latency:
            streams.append(self.latency_stream())
        self.c.add_streams(streams, ports=[i])
        before = self._counts()
        self.c.start(ports=[i], duration=seconds, force=True)
        # Enough passes over the replies for the step; duration ends it.
        loops = int(half * seconds) // max(1, self.pcap_frames) + 2
        self.c.push_remote(pcap, ports=[o], ipg_usec=1e6 / half, count=loops, duration=seconds, force=True)
        self.c.wait_on_traffic(ports=self.ports)
        time.sleep(self.o.drain)
        after = self._counts()
        offered = after[i][0] - before[i][0] + after[o][0] - before[o][0]
        received = after[o][1] - before[o][1] + after[i][1] - before[i][1]
        lat = None
        if latency:
            lat = self.c.get_pgid_stats([LATENCY_PG])
        return offered, received, lat


    def teardown_load(self, background, load_pps, cps, seconds):
        """Starts the tear-down test without waiting: the background
        flows from inside at load_pps for seconds (their first packets
        create them, the rest keep them), and this plan's flows once at
        cps, which then idle out."""
        i = self.o.inside
        self.c.reset(ports=self.ports)
        self.c.add_streams([forward_stream(self.api, background, self.o, 2, load_pps),
                            forward_stream(self.api, self.plan, self.o, 1, cps)], ports=[i])
        self.c.start(ports=[i], duration=seconds, force=True)

    def stop(self):
        """Stops every port."""
        self.c.stop(ports=self.ports)


class Method(object):
    """The searches, independent of TRex: gen is a TRex (or a stand-in)."""

    def __init__(self, gen, natgw, plan, opts, log=print, clock=time.time, sleep=time.sleep):
        self.gen, self.natgw, self.plan, self.o, self.log = gen, natgw, plan, opts, log
        self.clock, self.sleep = clock, sleep
        self.pcap, self.rows = None, []

    def teardown(self, throughput, cps):
        """The tear-down rate under load: with half the throughput flowing
        (from inside, on other flows), the plan's flows are created once
        and left to idle out; natgw's idle-expiry counter, sampled every
        --sample s, gives the rate (rfc9693.teardown_rate)."""
        o = self.o
        load = max(1, throughput // 2)
        if not o.udp_timeout:
            return {"flows": self.plan.flows, "flows_expired_idle": 0, "t_n_s": 0.0, "flows_per_s": 0.0,
                    "load_pps": load, "error": "not measured: give natgw's UDP timeout (--udp-timeout)"}
        self.natgw.wait_empty(o.empty_timeout)
        # Long enough to create the flows, wait out their timeout, and
        # expire them at a rate as low as 1/10 of the connection rate.
        seconds = self.plan.flows / cps + o.udp_timeout + 10 * self.plan.flows / cps + 30
        base = self.natgw.expired_idle()
        self.gen.teardown_load(self.plan.background(o), load, cps, seconds)
        samples, end = [(self.clock(), base)], self.clock() + seconds
        try:
            while self.clock() < end:
                self.sleep(o.sample)
                samples.append((self.clock(), self.natgw.expired_idle()))
                if samples[-1][1] - base >= self.plan.flows:
                    break
        finally:
            self.gen.stop()
        res = rfc9693.teardown_rate(samples, self.plan.flows, load)
        self.log("tear-down under %d pps: %s" % (load, res))
        return res

    def connection_trial(self, rate):
        """One phase 1 step: empty table, first packets, replies."""
        self.natgw.wait_empty(self.o.empty_timeout)
        sent, out, secs = self.gen.fill(rate)
        self.rows = self.natgw.flow_list(self.plan.source_list)
        if not self.rows:
            s = rfc9693.search_step(2 * self.plan.flows, out, secs, note="natgw lists no flows")
            return s
        self.pcap = self.gen.reply_pcap(self.rows)
        rsent, back = self.gen.replies(self.pcap, rate)
        # A connection is two packets, the first and its reply; TRex
        # sending fewer than asked is the generator's limit, not a loss.
        offered = sent + rsent
        received = min(out, self.plan.flows) + min(back, self.plan.flows)
        s = rfc9693.search_step(offered, received, secs, due=2 * self.plan.flows,
                                note="first sent %d out %d, replies sent %d in %d, natgw lists %d flows"
                                % (sent, out, rsent, back, len(self.rows)))
        s["pass"] = s["pass"] and len(self.rows) == self.plan.flows
        self.log("connections at %d/s: pass %s (%s)" % (rate, s["pass"], s["note"]))
        return s

    def throughput_trial(self, rate):
        """One phase 2 step at a two-way rate."""
        offered, received, _ = self.gen.traffic(self.pcap, rate, self.o.step)
        due = int(rate * self.o.step)
        s = rfc9693.search_step(offered, received, self.o.step, due=due)
        self.log("two-way %d pps: pass %s (offered %d received %d)" % (rate, s["pass"], offered, received))
        return s

    def run(self):
        """Runs the whole method and returns the run (rfc9693.new_run)."""
        o, t0 = self.o, time.time()
        run = rfc9693.new_run(self.plan.flows, o.capacity, self.plan.sources, o.step)
        run["generator"] = "TRex (stateless), trex_rfc9693.py"
        res = max(1, int(o.max_cps * o.resolution))
        run["connections_per_s"], run["connection_steps"] = rfc9693.binary_search(
            max(1000, o.max_cps // 256), o.max_cps, res, self.connection_trial)
        # Fill the table for phase 2 at the rate found (or the lowest tried)
        # and learn the public endpoints.
        fill = self.connection_trial(max(run["connections_per_s"], max(1000, o.max_cps // 256)))
        if not fill["pass"]:
            run["error"] = "phase 1 fill for phase 2 lost packets: %s" % fill.get("note", "")
            run["seconds"] = time.time() - t0
            return run
        res = max(1, int(o.max_rate * o.resolution))
        run["throughput_pps"], run["throughput_steps"] = rfc9693.binary_search(
            max(1000, o.max_rate // 256), o.max_rate, res, self.throughput_trial)
        run["pdr_pps"], run["pdr_steps"] = rfc9693.binary_search(
            max(1000, o.max_rate // 256), o.max_rate, res, lambda r: rfc9693.pdr_step(self.throughput_trial(r)))
        steps = run["throughput_steps"] + run["pdr_steps"]
        run["generator_max_offered_pps"] = int(max([s["offered"] / s["seconds"] for s in steps] or [0]))
        for pct, rate in rfc9693.latency_rates(run["throughput_pps"]):
            offered, received, lat = self.gen.traffic(self.pcap, rate, o.step, latency=True)
            run["latency"].append(latency_row_from_trex(pct, rate, offered, received, lat))
        run["teardown"] = self.teardown(run["throughput_pps"], max(run["connections_per_s"], 1000))
        run["seconds"] = time.time() - t0
        return run


def latency_row_from_trex(pct, rate, offered, received, stats):
    """Returns a latency row from TRex's get_pgid_stats of the latency
    stream, for a phase 2 step that offered/received frames."""
    l = (stats or {}).get("latency", {}).get(LATENCY_PG, {}).get("latency", {})
    hist = rfc9693.merge_histograms(l.get("histogram", {}))
    mx = float(l.get("total_max", 0))
    return rfc9693.latency_row(pct, rate, sum(hist.values()), max(0, offered - received), hist, mx)


def parser():
    """Returns the command-line parser."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--flows", type=int, required=True, help="connections of phase 1")
    p.add_argument("--sources", type=int, default=64, help="private sources")
    p.add_argument("--src", default="10.0.1.0", help="first private source")
    p.add_argument("--sports", type=int, default=0, help="source ports per source (0: chosen)")
    p.add_argument("--sport-lo", type=int, default=rfc9693.SPORT_LO)
    p.add_argument("--dport-lo", type=int, default=rfc9693.DPORT_LO)
    p.add_argument("--block", type=int, default=1024, help="natgw's ports_per_member")
    p.add_argument("--capacity", type=int, default=2000000, help="natgw's flow_capacity (for the report)")
    p.add_argument("--size", type=int, default=64, help="frame size, FCS included")
    p.add_argument("--max-cps", type=int, default=4000000, help="highest connection rate tried")
    p.add_argument("--max-rate", type=int, default=30000000, help="highest two-way rate tried")
    p.add_argument("--resolution", type=float, default=0.01, help="search resolution, of the maximum")
    p.add_argument("--step", type=float, default=60.0, help="elementary step, s (RFC 9693: 60)")
    p.add_argument("--drain", type=float, default=0.5, help="wait for frames in flight, s")
    p.add_argument("--empty-timeout", type=float, default=600, help="wait for an empty table, s")
    p.add_argument("--udp-timeout", type=float, default=0,
                   help="natgw's timeouts.udp in s, for the tear-down test (0: not measured)")
    p.add_argument("--sample", type=float, default=0.1, help="tear-down: natgw's counters sampled every s")
    p.add_argument("--natgw", required=True, help="natgw's management URL")
    p.add_argument("--natgw-mac", required=True, help="natgw's inside port MAC")
    p.add_argument("--natgw-outside-mac", required=True, help="natgw's outside port MAC")
    p.add_argument("--trex", default="127.0.0.1", help="TRex server")
    p.add_argument("--inside", type=int, default=0)
    p.add_argument("--outside", type=int, default=1)
    p.add_argument("--pcap-dir", default="/tmp", help="where the replies' pcap goes (TRex's host)")
    p.add_argument("--out", required=True, help="directory of rfc9693-FLOWS.json")
    return p


def main(argv=None):
    """Runs the method against TRex and natgw; returns the exit status."""
    opts = parser().parse_args(argv)
    try:
        plan = Plan(opts)
    except rfc9693.MethodError as e:
        print("trex_rfc9693: %s" % e, file=sys.stderr)
        return 1
    try:
        from trex.stl import api
    except ImportError:
        try:
            from trex_stl_lib import api
        except ImportError:
            print("trex_rfc9693: TRex's Python API (trex.stl.api) is not on PYTHONPATH", file=sys.stderr)
            return 1
    client = api.STLClient(server=opts.trex)
    client.connect()
    try:
        client.acquire(ports=[opts.inside, opts.outside], force=True)
        run = Method(TRex(api, client, plan, opts), Natgw(opts.natgw), plan, opts).run()
    finally:
        client.disconnect()
    print("trex_rfc9693: wrote %s" % rfc9693.write_run(opts.out, run))
    return 0


if __name__ == "__main__":
    sys.exit(main())
