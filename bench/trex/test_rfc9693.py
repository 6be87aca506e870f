"""Unit tests of rfc9693.py and trex_rfc9693.py's method, without TRex or
natgw (scripts/trafficgen_test.go runs them: python3 -m unittest)."""

import json
import os
import sys
import tempfile
import types
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trex_rfc9693  # noqa: E402
import rfc9693  # noqa: E402

# The JSON names of the harness's rfcRun, searchStep and latencyRow
# (bench/benchharness/report9693.go, gen.go).
HARNESS_RUN = {"flows", "flow_capacity", "sources", "step_s", "worker_cpu", "generator_cpu", "ring_size",
               "eal_args", "connections_per_s", "connection_steps", "throughput_pps", "throughput_steps",
               "generator_max_offered_pps", "pdr_pps", "pdr_steps", "latency", "translator_bytes",
               "go_heap_bytes", "seconds", "error"}
HARNESS_STEP = {"rate_pps", "pass", "lost", "offered", "seconds", "generator_limited", "note"}
HARNESS_LATENCY = {"load_percent", "rate_pps", "frames", "lost", "p50_us", "p99_us", "p99_9_us", "max_us"}


def threshold_trial(limit, ceiling=None):
    """A trial passing up to limit; the generator can't offer above ceiling."""
    def trial(rate):
        offered = rate if ceiling is None else min(rate, ceiling)
        return rfc9693.search_step(offered, offered if rate <= limit else offered - 1, 1.0, due=rate)
    return trial


class BinarySearchTest(unittest.TestCase):
    def test_finds_the_limit_within_resolution(self):
        for limit in (1000, 1234, 56789, 99999, 100000):
            rate, steps = rfc9693.binary_search(1000, 100000, 10, threshold_trial(limit))
            self.assertLessEqual(rate, limit)
            self.assertLess(limit - rate, 10 + 1, (limit, rate))
            self.assertEqual(steps[0]["rate_pps"], 100000, "hi first")
            self.assertTrue(all(s["pass"] == (s["rate_pps"] <= limit) for s in steps))

    def test_lo_failing_is_zero(self):
        rate, steps = rfc9693.binary_search(1000, 100000, 10, threshold_trial(999))
        self.assertEqual(rate, 0)
        self.assertEqual([s["rate_pps"] for s in steps], [100000, 1000])

    def test_generator_limited_step_fails(self):
        # natgw would pass everything; the generator offers at most 50000.
        rate, steps = rfc9693.binary_search(1000, 100000, 100, threshold_trial(10 ** 9, ceiling=50000))
        # A step offering at least 99.9 % of its rate is not limited.
        self.assertLessEqual(rate, 50000 / 0.999)
        self.assertGreater(rate, 49800)
        self.assertTrue(steps[0].get("generator_limited"))

    def test_bad_bounds(self):
        for lo, hi, res in ((0, 10, 1), (10, 5, 1), (1, 10, 0)):
            with self.assertRaises(rfc9693.MethodError):
                rfc9693.binary_search(lo, hi, res, threshold_trial(5))


class RangesTest(unittest.TestCase):
    def test_product_is_the_flows(self):
        r = rfc9693.rfc4814_ranges(65536, 64, 1024)
        self.assertEqual((r["sport_min"], r["sport_max"], r["dport_min"], r["dport_max"]), (1024, 2047, 1, 1))
        r = rfc9693.rfc4814_ranges(1 << 24, 256, 1024, sport_lo=2048, dport_lo=10)
        self.assertEqual(256 * (r["sport_max"] - r["sport_min"] + 1) * (r["dport_max"] - r["dport_min"] + 1), 1 << 24)
        self.assertEqual(r["dports"], 64)
        self.assertEqual(r["dport_max"], 73)

    def test_rejects(self):
        cases = [((1000, 3, 10), "not a multiple"), ((4096, 1, 2048), "block"),
                 ((65536, 1, 1), "outside RFC 4814"), ((1024, 1, 1024, 65000), "outside RFC 4814"),
                 ((0, 1, 1), "positive")]
        for args, want in cases:
            with self.assertRaises(rfc9693.MethodError) as cm:
                rfc9693.rfc4814_ranges(*args)
            self.assertIn(want, str(cm.exception))

    def test_choose_sports(self):
        self.assertEqual(rfc9693.choose_sports(65536, 64), 1024)
        self.assertEqual(rfc9693.choose_sports(1000, 8), 125)
        self.assertEqual(rfc9693.choose_sports(1 << 24, 1, 1024), 1024)
        with self.assertRaises(rfc9693.MethodError):
            rfc9693.choose_sports(1 << 30, 1, 1024)


class LatencyTest(unittest.TestCase):
    def test_percentiles_from_trex_buckets(self):
        self.assertEqual(rfc9693.histogram_bucket_end(0), 10)
        self.assertEqual(rfc9693.histogram_bucket_end(30), 40)
        self.assertEqual(rfc9693.histogram_bucket_end(200), 300)
        # 1000 samples: 500 in 0-10, 490 in 10-20, 9 in 50-60, 1 in 700-800.
        hist = {"0": 500, "10": 490, "50": 9, "700": 1, "900": 0}
        self.assertEqual(rfc9693.percentiles_from_histogram(hist, (50, 99, 99.9, 100)), [10.0, 20.0, 60.0, 800.0])
        self.assertEqual(rfc9693.percentiles_from_histogram(hist, (100,), max_us=731), [731.0])
        self.assertEqual(rfc9693.percentiles_from_histogram({}, (50,)), [None])

    def test_row_and_rates(self):
        row = rfc9693.latency_row(50, 5000000, 1000, 0, {0: 999, 20: 1}, 27.5)
        self.assertEqual(set(row), HARNESS_LATENCY)
        self.assertEqual((row["p50_us"], row["p99_us"], row["p99_9_us"], row["max_us"]), (10.0, 10.0, 10.0, 27.5))
        self.assertEqual(rfc9693.latency_rates(1000), [(10, 100), (50, 500), (90, 900)])
        self.assertEqual(rfc9693.merge_histograms({"10": 1}, {10: 2, 20: 1}), {10: 3, 20: 1})


class TeardownTest(unittest.TestCase):
    def test_rate_bracketed_by_samples(self):
        samples = [(0.0, 10), (1.0, 10), (2.0, 10), (2.5, 400), (3.0, 900), (3.5, 1010), (4.0, 1010)]
        r = rfc9693.teardown_rate(samples, 1000, 5000)
        self.assertEqual((r["t_n_s"], r["flows_expired_idle"], r["load_pps"]), (1.5, 1000, 5000))
        self.assertAlmostEqual(r["flows_per_s"], 1000 / 1.5)
        self.assertNotIn("error", r)

    def test_incomplete(self):
        r = rfc9693.teardown_rate([(0.0, 10), (1.0, 500)], 1000, 1)
        self.assertIn("expired 490 of the 1000", r["error"])
        self.assertIn("fewer than two", rfc9693.teardown_rate([(0.0, 1)], 1000, 1)["error"])


class ReportTest(unittest.TestCase):
    def test_pdr_step(self):
        self.assertTrue(rfc9693.pdr_step(rfc9693.search_step(1000, 995, 1.0))["pass"])
        self.assertFalse(rfc9693.pdr_step(rfc9693.search_step(1000, 994, 1.0))["pass"])
        self.assertFalse(rfc9693.pdr_step(rfc9693.search_step(0, 0, 1.0))["pass"])
        s = rfc9693.search_step(1000, 999, 1.0)
        rfc9693.pdr_step(s)
        self.assertFalse(s["pass"], "the zero-loss step is left as it was")

    def test_fields_are_the_harness(self):
        run = rfc9693.new_run(65536, 2000000, 64, 60.0)
        self.assertTrue(set(run) <= HARNESS_RUN, set(run) - HARNESS_RUN)
        self.assertTrue({"flows", "connections_per_s", "throughput_pps", "latency"} <= set(run))
        s = rfc9693.search_step(100, 99, 1.5, due=1000, note="x")
        self.assertEqual(set(s), HARNESS_STEP)
        self.assertEqual((s["pass"], s["lost"], s["generator_limited"]), (False, 1, True))

    def test_write_run(self):
        run = rfc9693.new_run(1024, 2048, 4, 1.0)
        run["throughput_steps"] = [rfc9693.search_step(10, 10, 1.0)]
        run["latency"] = [rfc9693.latency_row(10, 1, 1, 0, {0: 1}, 3)]
        with tempfile.TemporaryDirectory() as d:
            path = rfc9693.write_run(d, run)
            self.assertEqual(os.path.basename(path), "rfc9693-1024.json")
            with open(path) as f:
                self.assertEqual(json.load(f), run)
            run["troughput_pps"] = 1
            with self.assertRaises(rfc9693.MethodError):
                rfc9693.write_run(d, run)
            del run["troughput_pps"]
            run["latency"][0]["p95_us"] = 1
            with self.assertRaises(rfc9693.MethodError):
                rfc9693.write_run(d, run)

    def test_metric_sum(self):
        text = ('# HELP natgw_flows_active x\nnatgw_flows_active{worker="0",protocol="udp"} 3\n'
                'natgw_flows_active{worker="1",protocol="tcp"} 4\nnatgw_flows_active_other 9\n')
        self.assertEqual(rfc9693.metric_sum(text, "natgw_flows_active"), 7)
        self.assertEqual(rfc9693.metric_sum(text, "natgw_flows_active", {"protocol": "udp"}), 3)
        self.assertIsNone(rfc9693.metric_sum(text, "natgw_drops_total"))


class Recorder(object):
    """A stand-in for TRex's API classes: keeps the keyword arguments."""

    def __init__(self, kind, **kw):
        self.kind, self.kw = kind, kw

    def __truediv__(self, other):
        return self

    def __len__(self):
        return 42


def fake_api():
    api = types.SimpleNamespace()
    for name in ("Ether", "IP", "UDP", "STLVmFlowVar", "STLVmWrFlowVar", "STLVmFixIpv4", "STLPktBuilder",
                 "STLTXCont", "STLTXSingleBurst", "STLStream", "STLFlowLatencyStats"):
        setattr(api, name, (lambda n: lambda **kw: Recorder(n, **kw))(name))
    api.STLScVmRaw = lambda prog: Recorder("STLScVmRaw", prog=prog)
    return api


def run_vm(prog, packets):
    """Runs the flow variables of a field-engine program as TRex does for
    op inc with next_var: the first variable steps on every packet, a
    variable that wraps steps the one it names."""
    vars_ = [i.kw for i in prog if i.kind == "STLVmFlowVar"]
    val = {v["name"]: v["min_value"] for v in vars_}
    by = {v["name"]: v for v in vars_}
    out = []
    for _ in range(packets):
        out.append((val["src"], val["sport"], val["dport"]))
        name = vars_[0]["name"]
        while name:
            v = by[name]
            if val[name] < v["max_value"]:
                val[name] += 1
                break
            val[name] = v["min_value"]
            name = v.get("next_var")
    return out


def opts(**kw):
    o = dict(flows=4096, sources=4, src="10.0.1.0", sports=0, sport_lo=1024, dport_lo=1, block=1024,
             capacity=8192, size=64, max_cps=100000, max_rate=1000000, resolution=0.01, step=1.0,
             drain=0, empty_timeout=1, udp_timeout=0, sample=0.1, natgw_mac="02:00:00:00:00:01", natgw_outside_mac="02:00:00:00:00:02")
    o.update(kw)
    return types.SimpleNamespace(**o)


class StreamTest(unittest.TestCase):
    def test_phase1_enumerates_every_flow_once(self):
        o = opts(flows=24, sources=2, sports=3)
        plan = trex_rfc9693.Plan(o)
        s = trex_rfc9693.forward_stream(fake_api(), plan, o, 1, 1000)
        self.assertEqual(s.kw["mode"].kind, "STLTXSingleBurst")
        self.assertEqual(s.kw["mode"].kw["total_pkts"], 24)
        prog = s.kw["packet"].kw["vm"].kw["prog"]
        tuples = run_vm(prog, 24)
        self.assertEqual(len(set(tuples)), 24)
        src0 = trex_rfc9693._ip2int("10.0.1.0")
        self.assertEqual({t[0] for t in tuples}, {src0, src0 + 1})
        self.assertEqual({t[1] for t in tuples}, {1024, 1025, 1026})
        self.assertEqual({t[2] for t in tuples}, {1, 2, 3, 4})
        writes = {i.kw["pkt_offset"] for i in prog if i.kind == "STLVmWrFlowVar"}
        self.assertEqual(writes, {"IP.src", "UDP.sport", "UDP.dport"})

    def test_phase2_random_within_ranges(self):
        o = opts()
        plan = trex_rfc9693.Plan(o)
        s = trex_rfc9693.forward_stream(fake_api(), plan, o, 2, 1000)
        self.assertEqual(s.kw["mode"].kind, "STLTXCont")
        for i in s.kw["packet"].kw["vm"].kw["prog"]:
            if i.kind == "STLVmFlowVar":
                self.assertEqual(i.kw["op"], "random")
                self.assertNotIn("next_var", i.kw)

    def test_sources_outside_private(self):
        with self.assertRaises(rfc9693.MethodError):
            trex_rfc9693.Plan(opts(src="192.168.0.1"))
        with self.assertRaises(rfc9693.MethodError):
            trex_rfc9693.Plan(opts(src="10.255.255.254"))


class FakeNat(object):
    """natgw and TRex together: natgw forwards up to cps connections/s and
    pps frames/s two-way; the generator offers what it is told."""

    def __init__(self, plan, cps, pps):
        self.plan, self.cps, self.pps = plan, cps, pps
        self.flows, self.empties = 0, 0
        self.latency_calls = []
        self.now, self.teardown_at, self.expiry_rate, self.load, self.stopped = 1000.0, None, 0, None, False

    def clock(self):
        return self.now

    def sleep(self, s):
        self.now += s

    # natgw
    def wait_empty(self, _):
        self.empties += 1
        self.flows = 0

    def expired_idle(self):
        # 100 expired before; the plan's flows expire from teardown_at
        # at expiry_rate flows/s.
        if self.teardown_at is None or self.now < self.teardown_at:
            return 100
        return 100 + min(self.plan.flows, int((self.now - self.teardown_at) * self.expiry_rate))

    def flow_list(self, _):
        return ["198.19.1.1,%d,198.18.0.1,1,udp" % (1024 + i) for i in range(self.flows)]

    # TRex
    def fill(self, rate):
        out = self.plan.flows if rate <= self.cps else self.plan.flows - 1
        self.flows = out
        return self.plan.flows, out, self.plan.flows / rate

    def reply_pcap(self, rows):
        return "/tmp/x.pcap"

    def replies(self, pcap, rate):
        return self.flows, self.flows if rate <= self.cps else self.flows - 2

    def teardown_load(self, background, load, cps, seconds):
        self.load = (background.flows, background.src_first, load, cps)
        self.teardown_at = self.now + self.plan.flows / cps + self.udp_timeout

    def stop(self):
        self.stopped = True

    def traffic(self, pcap, rate, seconds, latency=False):
        offered = int(rate * seconds)
        # Loses nothing up to pps, 0.2 % up to 1.5 pps, then 1 %.
        received = offered if rate <= self.pps else offered - offered // (500 if rate <= 1.5 * self.pps else 100)
        stats = None
        if latency:
            self.latency_calls.append(rate)
            stats = {"latency": {trex_rfc9693.LATENCY_PG: {"latency": {"histogram": {"0": 90, "10": 10}, "total_max": 17}}}}
        return offered, received, stats


class FakeAPI(trex_rfc9693.Natgw):
    """natgw's API answering from a dict of paths."""

    def __init__(self, pages):
        trex_rfc9693.Natgw.__init__(self, "http://natgw")
        self.pages = pages

    def _get(self, path):
        return self.pages[path]


def flows_page(n, private):
    return json.dumps({"flows": [{"protocol": "udp", "private": "%s:%d" % (private, 1024 + i),
                                  "public": "198.19.1.1:%d" % (2000 + i), "remote": "198.18.0.1:1"}
                                 for i in range(n)]})


class NatgwTest(unittest.TestCase):
    def test_flow_list(self):
        api = FakeAPI({"/v1/flows?private=10.0.1.0&limit=3": flows_page(2, "10.0.1.0"),
                       "/v1/flows?private=10.0.1.1&limit=3": flows_page(1, "10.0.1.1")})
        self.assertEqual(api.flow_list(["10.0.1.0", "10.0.1.1"], limit=3),
                         ["198.19.1.1,2000,198.18.0.1,1,udp", "198.19.1.1,2001,198.18.0.1,1,udp",
                          "198.19.1.1,2000,198.18.0.1,1,udp"])

    def test_flow_list_cut_short_is_an_error(self):
        api = FakeAPI({"/v1/flows?private=10.0.1.0&limit=2": flows_page(2, "10.0.1.0")})
        with self.assertRaises(rfc9693.MethodError) as cm:
            api.flow_list(["10.0.1.0"], limit=2)
        self.assertIn("--sources", str(cm.exception))

    def test_flows_active(self):
        api = FakeAPI({"/metrics": 'natgw_flows_active{worker="0",protocol="udp"} 0\n'})
        api.wait_empty(0)
        api.pages["/metrics"] = 'natgw_flows_active{worker="0",protocol="udp"} 5\n'
        self.assertEqual(api.flows_active(), 5)
        with self.assertRaises(rfc9693.MethodError):
            api.wait_empty(-1)
        api.pages["/metrics"] = "natgw_packets_total 1\n"
        with self.assertRaises(rfc9693.MethodError):
            api.flows_active()


class MethodTest(unittest.TestCase):
    def test_whole_method(self):
        o = opts()
        plan = trex_rfc9693.Plan(o)
        nat = FakeNat(plan, cps=31337, pps=500000)
        run = trex_rfc9693.Method(nat, nat, plan, o, log=lambda *_: None).run()
        self.assertNotIn("error", run)
        self.assertLessEqual(run["connections_per_s"], 31337)
        self.assertGreater(run["connections_per_s"], 31337 - 1000)
        self.assertLessEqual(run["throughput_pps"], 500000)
        self.assertGreater(run["throughput_pps"], 500000 - 10000)
        self.assertLessEqual(run["pdr_pps"], 1.5 * 500000)
        self.assertGreater(run["pdr_pps"], 1.5 * 500000 - 10000)
        self.assertGreaterEqual(run["generator_max_offered_pps"], 1000000, "the highest step offered")
        self.assertEqual(nat.empties, len(run["connection_steps"]) + 1, "every phase 1 step starts empty")
        self.assertEqual([r["load_percent"] for r in run["latency"]], [10, 50, 90])
        self.assertEqual(nat.latency_calls, [run["throughput_pps"] * p // 100 for p in (10, 50, 90)])
        self.assertEqual(run["latency"][1]["p99_us"], 17.0)
        self.assertEqual(run["latency"][1]["p50_us"], 10.0)
        rfc9693.check_run(run)

    def test_teardown_under_load(self):
        o = opts(udp_timeout=30, sample=0.5)
        plan = trex_rfc9693.Plan(o)
        nat = FakeNat(plan, cps=31337, pps=500000)
        nat.udp_timeout, nat.expiry_rate = 30, 1000.0  # 4096 flows in 4.096 s
        m = trex_rfc9693.Method(nat, nat, plan, o, log=lambda *_: None, clock=nat.clock, sleep=nat.sleep)
        run = m.run()
        td = run["teardown"]
        self.assertNotIn("error", td)
        self.assertEqual(td["flows"], 4096)
        self.assertEqual(td["flows_expired_idle"], 4096)
        self.assertEqual(td["load_pps"], run["throughput_pps"] // 2, "half the throughput")
        # T_N is bracketed by samples: 4.096 s within one sample each side.
        self.assertGreaterEqual(td["t_n_s"], 4.096)
        self.assertLessEqual(td["t_n_s"], 4.096 + 2 * 0.5)
        self.assertTrue(nat.stopped)
        self.assertEqual(nat.load[:2], (1024, "10.0.1.4"), "background flows of the next source")
        rfc9693.check_run(run)

    def test_teardown_not_measured_without_timeout(self):
        o = opts()
        plan = trex_rfc9693.Plan(o)
        nat = FakeNat(plan, cps=31337, pps=500000)
        run = trex_rfc9693.Method(nat, nat, plan, o, log=lambda *_: None).run()
        self.assertIn("--udp-timeout", run["teardown"]["error"])
        self.assertIsNone(nat.load, "no tear-down load started")

    def test_fill_failing_is_an_error(self):
        o = opts()
        plan = trex_rfc9693.Plan(o)
        nat = FakeNat(plan, cps=10, pps=765432)
        run = trex_rfc9693.Method(nat, nat, plan, o, log=lambda *_: None).run()
        self.assertEqual(run["connections_per_s"], 0)
        self.assertIn("phase 1 fill", run["error"])


if __name__ == "__main__":
    unittest.main()
