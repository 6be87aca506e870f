#!/usr/bin/env python3
"""Writes the SNAT-aware return traffic of an RFC 9693 test as a pcap file.

Reads the flow list written by bench/trex/flows_to_csv.py

    public_address,public_port,remote_address,remote_port,protocol

and writes one Ethernet/IPv4/UDP (or TCP) frame per flow, from the server
(remote address and port) to the public address and port natgw chose, for
pktgen-dpdk (-s PORT:FILE) or TRex ("push") to replay on natgw's outside
port in a loop. Python standard library only: no scapy.

    bench/pktgen/return_pcap.py --dst-mac 3c:fd:fe:00:00:02 \\
        --src-mac 3c:fd:fe:00:00:03 -o /tmp/natgw-return.pcap /tmp/natgw-flows.csv

--dst-mac is natgw's outside port MAC; --src-mac the generator port's.
--size is the frame size with the 4-byte FCS (64 writes 60-byte frames;
the NIC adds the FCS). IPv4 and UDP/TCP checksums are computed (UDP may be
left zero with --udp-checksum zero). Malformed input is reported with its
line and the exit status is 1.
"""

import argparse
import csv
import ipaddress
import struct
import sys

FCS_LEN = 4
ETH_LEN, IPV4_LEN, UDP_LEN, TCP_LEN = 14, 20, 8, 20
PCAP_MAGIC = 0xA1B2C3D4
LINKTYPE_ETHERNET = 1
TCP_FLAGS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10, "U": 0x20}


class InputError(ValueError):
    """The flow list or an option is malformed."""


def checksum(data, initial=0):
    """Returns the Internet checksum (RFC 1071) of data."""
    if len(data) % 2:
        data += b"\x00"
    s = initial + sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def parse_mac(text):
    """Returns the 6 bytes of a MAC address written aa:bb:cc:dd:ee:ff."""
    parts = text.split(":")
    if len(parts) != 6 or not all(len(p) == 2 for p in parts):
        raise InputError("%r is not a MAC address like 02:00:00:00:00:01" % text)
    try:
        return bytes(int(p, 16) for p in parts)
    except ValueError:
        raise InputError("%r is not a MAC address like 02:00:00:00:00:01" % text)


def tcp_flags(text):
    """Returns the TCP flags byte for scapy-style letters ("SA")."""
    v = 0
    for c in text:
        if c not in TCP_FLAGS:
            raise InputError("TCP flag %r is not one of %s" % (c, "".join(TCP_FLAGS)))
        v |= TCP_FLAGS[c]
    return v


def read_flows(f, name):
    """Returns (public, public port, remote, remote port, proto) tuples from CSV f."""
    flows = []
    for n, row in enumerate(csv.reader(f), 1):
        if not row or row[0].startswith("#") or (n == 1 and row[0] == "public_address"):
            continue
        where = "%s:%d" % (name, n)
        if len(row) not in (4, 5):
            raise InputError("%s: want 4 or 5 fields, got %d" % (where, len(row)))
        proto = row[4].strip().lower() if len(row) == 5 else "udp"
        if proto not in ("udp", "tcp"):
            raise InputError("%s: protocol %r is not udp or tcp" % (where, proto))
        vals = []
        for i, text in enumerate(row[:4]):
            text = text.strip()
            if i % 2 == 0:
                try:
                    vals.append(int(ipaddress.IPv4Address(text)))
                except ValueError:
                    raise InputError("%s: %r is not an IPv4 address" % (where, text))
            else:
                if not (text.isascii() and text.isdigit()) or int(text) > 65535:
                    raise InputError("%s: %r is not a port" % (where, text))
                vals.append(int(text))
        flows.append((vals[0], vals[1], vals[2], vals[3], proto))
    return flows


def frame(flow, ident, opts):
    """Returns the Ethernet frame of one flow's return packet (without FCS)."""
    public, public_port, remote, remote_port, proto = flow
    l4_len = UDP_LEN if proto == "udp" else TCP_LEN
    total = opts.size - FCS_LEN - ETH_LEN
    payload = b"\x00" * (total - IPV4_LEN - l4_len)
    src, dst = struct.pack("!I", remote), struct.pack("!I", public)
    proto_num = 17 if proto == "udp" else 6
    pseudo = sum(struct.unpack("!4H", src + dst)) + proto_num + (total - IPV4_LEN)
    if proto == "udp":
        l4 = struct.pack("!HHHH", remote_port, public_port, UDP_LEN + len(payload), 0) + payload
        if opts.udp_checksum == "full":
            c = checksum(l4, pseudo) or 0xFFFF
            l4 = l4[:6] + struct.pack("!H", c) + l4[8:]
    else:
        l4 = struct.pack("!HHIIBBHHH", remote_port, public_port, 1, 1, (TCP_LEN // 4) << 4,
                         opts.tcp_flags, 65535, 0, 0) + payload
        l4 = l4[:16] + struct.pack("!H", checksum(l4, pseudo)) + l4[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, ident & 0xFFFF, 0, 64, proto_num, 0,
                     src, dst)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return opts.dst_mac + opts.src_mac + struct.pack("!H", 0x0800) + ip + l4


def write_pcap(out, frames):
    """Writes frames to the binary file out as a classic pcap (microseconds)."""
    out.write(struct.pack("<IHHiIII", PCAP_MAGIC, 2, 4, 0, 0, 65535, LINKTYPE_ETHERNET))
    for i, fr in enumerate(frames):
        out.write(struct.pack("<IIII", i // 1000000, i % 1000000, len(fr), len(fr)))
        out.write(fr)


def main(argv=None):
    """Runs the command line; returns the exit status."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("input", nargs="?", default="-", help="flow CSV (default: standard input)")
    p.add_argument("-o", "--output", required=True, help="pcap file to write")
    p.add_argument("--dst-mac", required=True, help="natgw's outside port MAC")
    p.add_argument("--src-mac", default="02:00:00:00:00:02", help="the generator port's MAC")
    p.add_argument("--size", type=int, default=64, help="frame size, FCS included")
    p.add_argument("--udp-checksum", choices=["full", "zero"], default="full")
    p.add_argument("--tcp-flags", default="SA", help="TCP flags (scapy letters)")
    opts = p.parse_args(argv)
    try:
        opts.dst_mac = parse_mac(opts.dst_mac)
        opts.src_mac = parse_mac(opts.src_mac)
        opts.tcp_flags = tcp_flags(opts.tcp_flags)
        if not 64 <= opts.size <= 9216:
            raise InputError("--size %d is not from 64 to 9216" % opts.size)
        if opts.input == "-":
            flows = read_flows(sys.stdin, "<stdin>")
        else:
            with open(opts.input, newline="") as f:
                flows = read_flows(f, opts.input)
        if not flows:
            raise InputError("no flows in %s" % opts.input)
        with open(opts.output, "wb") as out:
            write_pcap(out, (frame(fl, i, opts) for i, fl in enumerate(flows)))
    except (OSError, InputError) as e:
        print("return_pcap: %s" % e, file=sys.stderr)
        return 1
    print("return_pcap: %d frames of %d bytes (+FCS) in %s"
          % (len(flows), opts.size - FCS_LEN, opts.output), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
