"""TRex stateless profile: natgw's return traffic, SNAT-aware (RFC 9693).

In the real test phase the servers answer the flows natgw created in the
preliminary phase: each packet goes from a server (remote address and port)
to the public address and port natgw chose for that flow. natgw picks ports
at random within a member's block, so they can't be predicted: this profile
reads them from a CSV written by flows_to_csv.py from natgw's flow list
(GET /v1/flows, or natgw ctl flows --json):

    public_address,public_port,remote_address,remote_port,protocol
    198.19.1.1,40123,198.18.0.3,5001,udp

Each flow becomes one stream of a fixed packet (checksums computed when the
packet is built, so no field engine and no offload are needed); the rate is
shared evenly. TRex handles thousands of streams per port, not millions:
above --max-streams the profile refuses, and the return traffic is replayed
from a pcap instead (bench/pktgen/return_pcap.py writes one from the same
CSV; TRex's console "push" command or pktgen replays it).

Usage (TRex console, port 1 cabled to natgw's outside port):

    start -f natgw_return.py -p 1 -m 5mpps -t --csv /tmp/natgw-flows.csv

Frame size counts the 4-byte FCS: --size 64 sends 60-byte packets.
"""

import argparse
import csv
import ipaddress

try:
    from trex.stl.api import IP, STLPktBuilder, STLStream, STLTXCont, TCP, UDP, Ether
except ImportError:
    from trex_stl_lib.api import (IP, STLPktBuilder, STLStream, STLTXCont, TCP,
                                  UDP, Ether)

FCS_LEN = 4
CSV_FIELDS = ["public_address", "public_port", "remote_address", "remote_port", "protocol"]


class TunableError(ValueError):
    """A tunable or the flow list is missing, malformed or too large."""


class _Parser(argparse.ArgumentParser):
    """An argument parser that raises TunableError instead of exiting."""

    def error(self, message):
        raise TunableError("natgw_return.py: " + message)


def _parser():
    p = _Parser(prog="natgw_return.py", description=__doc__.splitlines()[0],
                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--csv", required=True, help="flow list from flows_to_csv.py")
    p.add_argument("--size", type=int, default=64, help="frame size, FCS included")
    p.add_argument("--pps", type=float, default=1000000.0,
                   help="packets per second for all flows together (TRex -m scales it)")
    p.add_argument("--max-streams", type=int, default=20000,
                   help="refuse flow lists longer than this (use a pcap replay)")
    p.add_argument("--udp-checksum", choices=["full", "zero"], default="full")
    p.add_argument("--tcp-flags", default="SA", help="TCP flags (scapy letters)")
    return p


def parse_tunables(tunables=None, kwargs=None):
    """Returns the options from a TRex tunables list and/or keyword arguments."""
    words = list(tunables or [])
    parser = _parser()
    known = {a.dest for a in parser._actions}
    for key, value in sorted((kwargs or {}).items()):
        if key in known and key != "help":
            words += ["--" + key.replace("_", "-"), str(value)]
    opts = parser.parse_args(words)
    if not 64 <= opts.size <= 9216:
        raise TunableError("natgw_return.py: --size %d is not from 64 to 9216" % opts.size)
    if opts.pps <= 0 or opts.max_streams < 1:
        raise TunableError("natgw_return.py: --pps and --max-streams must be positive")
    return opts


def _port(text, where):
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise TunableError("%s: %r is not a port" % (where, text))
    return port


def _addr(text, where):
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        raise TunableError("%s: %r is not an IPv4 address" % (where, text))


def read_flows(path):
    """Returns the flows of a flows_to_csv.py file as tuples
    (public address, public port, remote address, remote port, protocol)."""
    flows = []
    with open(path, newline="") as f:
        for n, row in enumerate(csv.reader(f), 1):
            if not row or row[0].startswith("#"):
                continue
            if n == 1 and row[0] == CSV_FIELDS[0]:
                continue
            where = "%s:%d" % (path, n)
            if len(row) not in (4, 5):
                raise TunableError("%s: want 4 or 5 fields (%s), got %d"
                                   % (where, ",".join(CSV_FIELDS), len(row)))
            proto = row[4].strip().lower() if len(row) == 5 else "udp"
            if proto not in ("udp", "tcp"):
                raise TunableError("%s: protocol %r is not udp or tcp" % (where, proto))
            flows.append((_addr(row[0].strip(), where), _port(row[1], where),
                          _addr(row[2].strip(), where), _port(row[3], where), proto))
    return flows


def return_packet(flow, opts):
    """Returns the server's packet for one flow: remote -> public."""
    public, public_port, remote, remote_port, proto = flow
    ip = IP(src=remote, dst=public, ttl=64)
    if proto == "udp":
        if opts.udp_checksum == "zero":
            l4 = UDP(sport=remote_port, dport=public_port, chksum=0)
        else:
            l4 = UDP(sport=remote_port, dport=public_port)
    else:
        l4 = TCP(sport=remote_port, dport=public_port, flags=opts.tcp_flags)
    pkt = Ether() / ip / l4
    pad = opts.size - FCS_LEN - len(pkt)
    if pad > 0:
        pkt = pkt / (b"\x00" * pad)
    return pkt


class STLS1(object):
    """The natgw return-traffic profile (TRex loads it through register())."""

    def get_streams(self, direction=0, tunables=None, **kwargs):
        """Returns one continuous stream per flow of the CSV."""
        opts = parse_tunables(tunables, kwargs)
        flows = read_flows(opts.csv)
        if not flows:
            raise TunableError("natgw_return.py: %s lists no flows" % opts.csv)
        if len(flows) > opts.max_streams:
            raise TunableError("natgw_return.py: %d flows exceed --max-streams %d: replay "
                               "a pcap from bench/pktgen/return_pcap.py instead"
                               % (len(flows), opts.max_streams))
        pps = opts.pps / len(flows)
        return [STLStream(name="natgw_return_%d" % i,
                          packet=STLPktBuilder(pkt=return_packet(flow, opts)),
                          mode=STLTXCont(pps=pps))
                for i, flow in enumerate(flows)]


def register():
    """Returns the profile object (TRex's entry point)."""
    return STLS1()
