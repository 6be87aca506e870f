"""The pure logic of natgw's RFC 9693 bare-metal driver (trex_rfc9693.py).

Nothing here talks to TRex or natgw, so bench/trex/test_rfc9693.py checks
it without either: the zero-loss binary search, the RFC 4814 port ranges of
RFC 9693's two phases, latency percentiles from TRex's histogram, natgw's
Prometheus metrics, and the result file. The result file has the fields,
names and units of the in-VM harness's (bench/benchharness, report9693.go:
rfcRun, searchStep, latencyRow), so `benchharness report9693 -dir DIR` can
read it and a bare-metal run reports the same metrics as `make bench`.
"""

import json
import os

# RFC 4814 section 4.5: pseudorandom ports, sources from 1024-65535 and
# destinations from 1-49151; RFC 9693 limits both to ranges whose product
# is the number of connections.
SPORT_LO, SPORT_HI = 1024, 65535
DPORT_LO, DPORT_HI = 1, 49151

# Latency is measured at these percents of the zero-loss throughput.
LATENCY_LOADS = (10, 50, 90)


class MethodError(ValueError):
    """A setting of the method is missing, malformed or inconsistent."""


def binary_search(lo, hi, resolution, trial):
    """Returns the highest rate in [lo, hi] at which trial passes, and the steps.

    The same search as the harness's binarySearch (gen.go): hi is tried
    first; if it fails, lo; then the interval between the highest passing
    and the lowest failing rate is halved until it is narrower than
    resolution. trial(rate) returns a step (search_step); a step the
    generator could not offer (generator_limited) counts as failing. The
    rate is 0 when even lo fails.
    """
    if lo <= 0 or hi < lo or resolution <= 0:
        raise MethodError("binary search: bad bounds lo %r hi %r resolution %r" % (lo, hi, resolution))
    steps = []

    def passes(rate):
        s = trial(rate)
        s["rate_pps"] = rate
        steps.append(s)
        return s["pass"] and not s.get("generator_limited", False)

    if passes(hi):
        return hi, steps
    if not passes(lo):
        return 0, steps
    good, bad = lo, hi
    while bad - good > resolution:
        mid = good + (bad - good) // 2
        if passes(mid):
            good = mid
        else:
            bad = mid
    return good, steps


def search_step(offered, received, seconds, due=None, note=""):
    """Returns one step of a search as the harness's searchStep.

    offered counts the frames (or connections' packets) the generator sent,
    received those that came back translated; due is what the rate asked
    for: a generator that sent less than 99.9 % of it was limited.
    """
    lost = max(0, offered - received)
    s = {"rate_pps": 0, "pass": lost == 0, "lost": lost, "offered": offered, "seconds": seconds}
    if due is not None and offered < 0.999 * due:
        s["generator_limited"] = True
    if note:
        s["note"] = note
    return s


# PDR_LOSS is the loss ratio of the PDR search (CSIT's partial drop rate,
# the harness's pdrLoss).
PDR_LOSS = 0.005


def pdr_step(step, ratio=PDR_LOSS):
    """Returns a copy of a search step that passes when it lost at most
    ratio of the frames offered (the PDR search) instead of none."""
    s = dict(step)
    s["pass"] = s["offered"] > 0 and s["lost"] <= ratio * s["offered"]
    return s


def rfc4814_ranges(flows, sources, sports, sport_lo=SPORT_LO, dport_lo=DPORT_LO, block=1024):
    """Returns the port ranges of RFC 9693's flows for natgw.

    Each of sources private addresses sends from sports source ports to
    flows / (sources x sports) destination ports of one server, so every
    (source, source port, destination port) is one flow. natgw gives a
    source a block of `block` public ports per server endpoint, so sports
    may not exceed it. Returns a dict with sport_min, sport_max,
    dport_min, dport_max (inclusive) and dports.
    """
    for name, v in (("flows", flows), ("sources", sources), ("sports", sports)):
        if not isinstance(v, int) or v < 1:
            raise MethodError("%s must be a positive integer, not %r" % (name, v))
    if flows % (sources * sports):
        raise MethodError("flows %d is not a multiple of sources x source ports (%d x %d)"
                          % (flows, sources, sports))
    if sports > block:
        raise MethodError("%d source ports exceed natgw's block of %d ports: natgw would drop the "
                          "rest as port_exhausted" % (sports, block))
    dports = flows // (sources * sports)
    if sport_lo < SPORT_LO or sport_lo + sports - 1 > SPORT_HI:
        raise MethodError("source ports %d-%d are outside RFC 4814's %d-%d"
                          % (sport_lo, sport_lo + sports - 1, SPORT_LO, SPORT_HI))
    if dport_lo < DPORT_LO or dport_lo + dports - 1 > DPORT_HI:
        raise MethodError("destination ports %d-%d are outside RFC 4814's %d-%d: use more sources "
                          "or source ports" % (dport_lo, dport_lo + dports - 1, DPORT_LO, DPORT_HI))
    return {"sport_min": sport_lo, "sport_max": sport_lo + sports - 1,
            "dport_min": dport_lo, "dport_max": dport_lo + dports - 1, "dports": dports}


def choose_sports(flows, sources, block=1024):
    """Returns the most source ports per source, at most block, that divide
    flows / sources and leave destination ports within RFC 4814's range."""
    if sources < 1 or flows % sources:
        raise MethodError("flows %d is not a multiple of sources %d" % (flows, sources))
    per = flows // sources
    for sports in range(min(block, per), 0, -1):
        if per % sports == 0 and per // sports <= DPORT_HI - DPORT_LO + 1:
            return sports
    raise MethodError("%d flows per source need more than %d x %d ports: use more sources"
                      % (per, block, DPORT_HI - DPORT_LO + 1))


def histogram_bucket_end(start):
    """Returns the end of one of TRex's latency histogram buckets (µs).

    TRex's buckets start at 0 (0-10 µs), then at multiples of a power of
    ten that keep one significant digit: 10-20, ..., 90-100, 100-200, ...
    """
    start = int(start)
    if start == 0:
        return 10
    return start + 10 ** (len(str(start)) - 1)


def percentiles_from_histogram(hist, quantiles, max_us=None):
    """Returns the latency of each quantile (0-100) from a TRex histogram.

    hist maps a bucket's start (µs, int or string) to its count. A
    percentile is the end of the bucket holding its rank, capped at max_us
    (TRex's total_max) when given: an upper bound, as coarse as TRex's
    buckets (one significant digit). Returns None for each quantile when
    the histogram is empty.
    """
    buckets = sorted((int(float(k)), int(v)) for k, v in hist.items() if int(v) > 0)
    total = sum(c for _, c in buckets)
    out = []
    for q in quantiles:
        if total == 0:
            out.append(None)
            continue
        rank = max(1, -(-int(round(q * total * 1000)) // 100000))  # ceil(q/100 * total)
        seen, value = 0, None
        for start, count in buckets:
            seen += count
            if seen >= rank:
                value = float(histogram_bucket_end(start))
                break
        if max_us is not None and value is not None:
            value = min(value, float(max_us))
        out.append(value)
    return out


def merge_histograms(*hists):
    """Returns the bucket-wise sum of TRex latency histograms."""
    out = {}
    for h in hists:
        for k, v in (h or {}).items():
            key = int(float(k))
            out[key] = out.get(key, 0) + int(v)
    return out


def latency_row(load_percent, rate, frames, lost, hist, max_us):
    """Returns one latency row as the harness's latencyRow."""
    p50, p99, p999 = percentiles_from_histogram(hist, (50, 99, 99.9), max_us)
    return {"load_percent": load_percent, "rate_pps": int(rate), "frames": int(frames), "lost": int(lost),
            "p50_us": p50 or 0.0, "p99_us": p99 or 0.0, "p99_9_us": p999 or 0.0, "max_us": float(max_us or 0)}


def new_run(flows, capacity, sources, step_s):
    """Returns an empty result of one flow count, as the harness's rfcRun."""
    return {"flows": flows, "flow_capacity": capacity, "sources": sources, "step_s": step_s,
            "worker_cpu": -1, "generator_cpu": -1, "ring_size": 0, "eal_args": [],
            "connections_per_s": 0, "connection_steps": [], "throughput_pps": 0,
            "throughput_steps": [], "generator_max_offered_pps": 0, "pdr_pps": 0,
            "latency": [], "translator_bytes": 0, "go_heap_bytes": 0, "seconds": 0.0}


# The fields of a run, in the harness's rfcRun; write_run refuses others so
# a typo can't make a report the harness reads as zero.
RUN_FIELDS = frozenset(new_run(1, 1, 1, 1)) | {"pdr_steps", "error", "generator", "notes", "teardown"}
STEP_FIELDS = frozenset({"rate_pps", "pass", "lost", "offered", "seconds", "generator_limited", "note"})
LATENCY_FIELDS = frozenset(latency_row(10, 0, 0, 0, {}, 0))


def check_run(run):
    """Raises MethodError unless run has only the harness's fields."""
    extra = set(run) - RUN_FIELDS
    if extra:
        raise MethodError("run has fields the harness does not know: %s" % ", ".join(sorted(extra)))
    for key in ("connection_steps", "throughput_steps", "pdr_steps"):
        for s in run.get(key, []):
            if set(s) - STEP_FIELDS or not {"rate_pps", "pass", "lost", "offered", "seconds"} <= set(s):
                raise MethodError("%s: step %r is not a searchStep" % (key, s))
    for row in run.get("latency", []):
        if set(row) != LATENCY_FIELDS:
            raise MethodError("latency row %r is not a latencyRow" % (row,))


def write_run(directory, run):
    """Writes run to DIRECTORY/rfc9693-FLOWS.json (the harness's name) and
    returns the path."""
    check_run(run)
    path = os.path.join(directory, "rfc9693-%d.json" % run["flows"])
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(run, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)
    return path


def teardown_rate(samples, flows, load_pps):
    """Returns the tear-down result from natgw's counters sampled while it
    expires flows idle flows under load.

    samples are (time s, natgw_flows_expired_total{reason="idle"}) in time
    order, the first taken before any of the flows expired. T_N runs from
    the last sample before the counter rose to the first at which it had
    risen by flows: it brackets the expiry, so T_N is at most two sampling
    intervals long and flows / T_N a lower bound of the rate.
    """
    out = {"flows": flows, "flows_expired_idle": 0, "t_n_s": 0.0, "flows_per_s": 0.0, "load_pps": int(load_pps)}
    if len(samples) < 2:
        out["error"] = "fewer than two samples of natgw's counters"
        return out
    base = samples[0][1]
    start = end = None
    for i, (t, v) in enumerate(samples):
        if start is None and v > base:
            start = samples[i - 1][0] if i > 0 else t
        if v - base >= flows:
            end = t
            break
    out["flows_expired_idle"] = int(samples[-1][1] - base if end is None else v - base)
    if start is None or end is None:
        out["error"] = "natgw expired %d of the %d flows while sampled" % (out["flows_expired_idle"], flows)
        return out
    out["t_n_s"] = end - start
    if out["t_n_s"] <= 0:
        out["error"] = "the expiry fell between two samples at the same time"
        return out
    out["flows_per_s"] = flows / out["t_n_s"]
    return out


def metric_sum(text, name, labels=None):
    """Returns the sum of a Prometheus metric's samples in an exposition
    text, keeping those whose labels include labels; None when absent."""
    total, found = 0.0, False
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        metric, _, rest = head.partition("{")
        if metric.strip() != name:
            continue
        got = {}
        for part in rest.rstrip("}").split(","):
            if "=" in part:
                k, v = part.split("=", 1)
                got[k.strip()] = v.strip().strip('"')
        if any(got.get(k) != v for k, v in (labels or {}).items()):
            continue
        try:
            total += float(value)
        except ValueError:
            raise MethodError("metric %s: %r is not a number" % (name, value))
        found = True
    return total if found else None


def latency_rates(throughput, loads=LATENCY_LOADS):
    """Returns (load percent, two-way rate) for the latency steps."""
    return [(p, throughput * p // 100) for p in loads if throughput * p // 100 > 0]
