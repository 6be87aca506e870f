"""TRex stateless profile: natgw's inside traffic for RFC 9693 benchmarks.

Many private sources send to many servers through natgw. Every packet is one
flow of a fixed set of F = sources x destinations x ports-per-source flows:

    source address  one of the first --sources addresses of --src-net
                    (pool members or default-SNAT sources of the natgw
                    configuration under test, inside 10.0.0.0/8)
    source port     one of P consecutive ports from --src-port-base
    destination     one of the first --destinations addresses of --dst-net
                    (servers in 198.18.0.0/16, RFC 2544), port --dst-port

A single 32-bit field-engine variable counts the flows (0 .. F-1) and masked
writes (STLVmWrMaskFlowVar) cut it into the three fields, destination in the
low bits: consecutive packets go to different destinations, and so to
different natgw workers (they own flows by remote endpoint). One variable
rather than three keeps the fields a true cross product: TRex steps every
variable on every packet, so three independent counters would only cover
lcm(S, D, P) combinations and would drift apart across TRex cores. The price
is that the counts are powers of two and the bases aligned to them.

RFC 9693's two phases:

    --phase preliminary  a single burst of exactly F packets ("inc" order):
                         natgw creates every flow once. Run it at a rate
                         natgw sustains; the highest such rate with no loss
                         is the maximum connection establishment rate.
    --phase test         continuous traffic over the same F flows (the real
                         test phase), in order (--order inc) or pseudorandom
                         (--order random, RFC 4814); the return half comes
                         from natgw_return.py on the outside port.

Frame size counts the 4-byte FCS: --size 64 sends 60-byte packets. UDP
checksums are zero by default (valid, RFC 768; natgw keeps them zero) so no
checksum offload is needed; --l4-checksum hw has the NIC compute them
(needs TX checksum offload). TCP (--proto tcp, a SYN by default) defaults to
hw, a zero TCP checksum being invalid.

Usage (TRex console, port 0 cabled to natgw's inside port):

    start -f natgw_stl.py -p 0 -t --phase preliminary --sources 256 --flows 65536
    start -f natgw_stl.py -p 0 -m 5mpps -t --phase test --flows 65536

Older TRex versions pass tunables as "-t name=value,..." keyword arguments
(flows=65536,phase=preliminary); both forms are accepted. The streams are
for direction 0 (inside); odd ports (direction 1) get none.
"""

import argparse
import ipaddress

try:
    from trex.stl.api import (CTRexVmInsFixHwCs, IP, STLPktBuilder, STLScVmRaw,
                              STLStream, STLTXCont, STLTXSingleBurst,
                              STLVmFixChecksumHw, STLVmFixIpv4, STLVmFlowVar,
                              STLVmWrMaskFlowVar, TCP, UDP, Ether)
except ImportError:
    from trex_stl_lib.api import (CTRexVmInsFixHwCs, IP, STLPktBuilder,
                                  STLScVmRaw, STLStream, STLTXCont,
                                  STLTXSingleBurst, STLVmFixChecksumHw,
                                  STLVmFixIpv4, STLVmFlowVar,
                                  STLVmWrMaskFlowVar, TCP, UDP, Ether)

PRIVATE_RANGE = ipaddress.ip_network("10.0.0.0/8")
SERVER_RANGE = ipaddress.ip_network("198.18.0.0/16")
FCS_LEN = 4


class TunableError(ValueError):
    """A tunable is missing, malformed or inconsistent with the others."""


class _Parser(argparse.ArgumentParser):
    """An argument parser that raises TunableError instead of exiting."""

    def error(self, message):
        raise TunableError("natgw_stl.py: " + message)


def _parser():
    p = _Parser(prog="natgw_stl.py", description=__doc__.splitlines()[0],
                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--phase", choices=["preliminary", "test"], default="test",
                   help="RFC 9693 phase: one packet per flow, or continuous")
    p.add_argument("--src-net", default="10.0.1.0/24",
                   help="prefix of the private sources (inside 10.0.0.0/8)")
    p.add_argument("--sources", type=int, default=256,
                   help="number of private sources (a power of two)")
    p.add_argument("--dst-net", default="198.18.0.0/16",
                   help="prefix of the servers (inside 198.18.0.0/16)")
    p.add_argument("--destinations", type=int, default=16,
                   help="number of server addresses (a power of two)")
    p.add_argument("--dst-port", type=int, default=5001,
                   help="server port")
    p.add_argument("--flows", type=int, default=65536,
                   help="flows: sources x destinations x ports per source")
    p.add_argument("--src-port-base", type=int, default=1024,
                   help="first source port (a multiple of the ports per source)")
    p.add_argument("--block", type=int, default=1024,
                   help="natgw's SNAT ports per member: ports per source and "
                        "destination above it would be refused (port_exhausted)")
    p.add_argument("--size", type=int, default=64,
                   help="frame size in bytes, FCS included")
    p.add_argument("--pps", type=float, default=1000000.0,
                   help="packets per second (TRex -m scales it)")
    p.add_argument("--order", choices=["inc", "random"], default="inc",
                   help="order of flows in the test phase")
    p.add_argument("--proto", choices=["udp", "tcp"], default="udp")
    p.add_argument("--tcp-flags", default="S", help="TCP flags (scapy letters)")
    p.add_argument("--l4-checksum", choices=["auto", "zero", "hw"], default="auto",
                   help="UDP/TCP checksum: zero (UDP only), NIC offload, or "
                        "auto (zero for UDP, hw for TCP)")
    return p


def parse_tunables(tunables=None, kwargs=None):
    """Returns the options from a TRex tunables list and/or keyword arguments.

    New TRex versions hand the profile a list of command-line words; old ones
    hand keyword arguments. Keywords that are not tunables of this profile
    (port_id and the like) are ignored.
    """
    words = list(tunables or [])
    parser = _parser()
    known = {a.dest for a in parser._actions}
    for key, value in sorted((kwargs or {}).items()):
        if key in known and key != "help":
            words += ["--" + key.replace("_", "-"), str(value)]
    opts = parser.parse_args(words)
    check(opts)
    return opts


def _log2(n, what):
    if n < 1 or n & (n - 1):
        raise TunableError("natgw_stl.py: %s must be a power of two, not %d" % (what, n))
    return n.bit_length() - 1


def _network(text, what, within):
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as e:
        raise TunableError("natgw_stl.py: %s: %s" % (what, e))
    if net.version != 4 or not net.subnet_of(within):
        raise TunableError("natgw_stl.py: %s %s is not inside %s" % (what, net, within))
    return net


def check(opts):
    """Validates opts and adds the derived fields; raises TunableError."""
    src_net = _network(opts.src_net, "--src-net", PRIVATE_RANGE)
    dst_net = _network(opts.dst_net, "--dst-net", SERVER_RANGE)
    opts.src_bits = _log2(opts.sources, "--sources")
    opts.dst_bits = _log2(opts.destinations, "--destinations")
    if opts.sources > src_net.num_addresses:
        raise TunableError("natgw_stl.py: --sources %d exceeds --src-net %s"
                           % (opts.sources, src_net))
    if opts.destinations > dst_net.num_addresses:
        raise TunableError("natgw_stl.py: --destinations %d exceeds --dst-net %s"
                           % (opts.destinations, dst_net))
    pairs = opts.sources * opts.destinations
    if opts.flows < pairs or opts.flows % pairs:
        raise TunableError("natgw_stl.py: --flows %d is not a multiple of sources x "
                           "destinations (%d)" % (opts.flows, pairs))
    opts.ports = opts.flows // pairs
    opts.port_bits = _log2(opts.ports, "ports per source (flows / sources / destinations)")
    if opts.flows > 1 << 32:
        raise TunableError("natgw_stl.py: --flows %d exceeds 2^32" % opts.flows)
    if opts.ports > opts.block:
        raise TunableError("natgw_stl.py: %d ports per source and destination exceed "
                           "natgw's block of %d (--block): natgw would drop the rest as "
                           "port_exhausted" % (opts.ports, opts.block))
    base = opts.src_port_base
    if base < 1 or base % opts.ports or base + opts.ports - 1 > 65535:
        raise TunableError("natgw_stl.py: --src-port-base %d must be a multiple of the %d "
                           "ports per source, with the last port at most 65535"
                           % (base, opts.ports))
    if not 1 <= opts.dst_port <= 65535:
        raise TunableError("natgw_stl.py: --dst-port %d is not a port" % opts.dst_port)
    if not 64 <= opts.size <= 9216:
        raise TunableError("natgw_stl.py: --size %d is not from 64 to 9216" % opts.size)
    if opts.pps <= 0:
        raise TunableError("natgw_stl.py: --pps must be positive")
    if opts.l4_checksum == "auto":
        opts.l4_checksum = "zero" if opts.proto == "udp" else "hw"
    if opts.l4_checksum == "zero" and opts.proto == "tcp":
        raise TunableError("natgw_stl.py: a TCP checksum can't be zero: use --l4-checksum hw")
    opts.src_first = str(src_net.network_address)
    opts.dst_first = str(dst_net.network_address)


def _base_packet(opts):
    ip = IP(src=opts.src_first, dst=opts.dst_first, ttl=64)
    if opts.proto == "udp":
        l4 = UDP(sport=opts.src_port_base, dport=opts.dst_port)
        if opts.l4_checksum == "zero":
            l4 = UDP(sport=opts.src_port_base, dport=opts.dst_port, chksum=0)
    else:
        l4 = TCP(sport=opts.src_port_base, dport=opts.dst_port, flags=opts.tcp_flags)
    pkt = Ether() / ip / l4
    pad = opts.size - FCS_LEN - len(pkt)
    if pad > 0:
        pkt = pkt / (b"\x00" * pad)
    return pkt


def field_engine(opts):
    """Returns the field-engine program: one flow counter, three masked writes."""
    l4 = "UDP" if opts.proto == "udp" else "TCP"
    op = "inc" if opts.phase == "preliminary" or opts.order == "inc" else "random"
    prog = [STLVmFlowVar(name="flow", min_value=0, max_value=opts.flows - 1,
                         size=4, op=op)]
    if opts.destinations > 1:
        prog.append(STLVmWrMaskFlowVar(fv_name="flow", pkt_offset="IP.dst",
                                       pkt_cast_size=4, mask=opts.destinations - 1,
                                       shift=0))
    if opts.sources > 1:
        prog.append(STLVmWrMaskFlowVar(fv_name="flow", pkt_offset="IP.src",
                                       pkt_cast_size=4, mask=opts.sources - 1,
                                       shift=-opts.dst_bits))
    if opts.ports > 1:
        # A 4-byte write over source and destination port, the source port
        # in the upper half: whether TRex narrows the variable to the cast
        # size before or after shifting, no bit of the counter is lost.
        prog.append(STLVmWrMaskFlowVar(fv_name="flow", pkt_offset=l4 + ".sport",
                                       pkt_cast_size=4, mask=(opts.ports - 1) << 16,
                                       shift=16 - opts.dst_bits - opts.src_bits))
    if opts.l4_checksum == "hw":
        l4_type = CTRexVmInsFixHwCs.L4_TYPE_UDP if l4 == "UDP" else CTRexVmInsFixHwCs.L4_TYPE_TCP
        prog.append(STLVmFixChecksumHw(l3_offset="IP", l4_offset=l4, l4_type=l4_type))
    else:
        prog.append(STLVmFixIpv4(offset="IP"))
    return STLScVmRaw(prog)


class STLS1(object):
    """The natgw inside-traffic profile (TRex loads it through register())."""

    def create_stream(self, opts):
        """Returns the stream of the chosen phase."""
        if opts.phase == "preliminary":
            mode = STLTXSingleBurst(pps=opts.pps, total_pkts=opts.flows)
        else:
            mode = STLTXCont(pps=opts.pps)
        pkt = STLPktBuilder(pkt=_base_packet(opts), vm=field_engine(opts))
        return STLStream(name="natgw_" + opts.phase, packet=pkt, mode=mode)

    def get_streams(self, direction=0, tunables=None, **kwargs):
        """Returns the streams for a port: direction 0 (inside) only."""
        opts = parse_tunables(tunables, kwargs)
        if direction % 2:
            return []
        return [self.create_stream(opts)]


def register():
    """Returns the profile object (TRex's entry point)."""
    return STLS1()
