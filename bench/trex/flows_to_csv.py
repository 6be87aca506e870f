#!/usr/bin/env python3
"""Converts natgw's flow list (JSON) to the CSV the return-traffic tools read.

Input: the body of GET /v1/flows (SPEC section 6), or the output of
`natgw ctl flows --json`:

    {"flows": [{"protocol": "udp", "private": "10.0.1.4:1024",
                "public": "198.19.1.1:40123", "remote": "198.18.0.3:5001",
                "state": "udp", "idle_seconds": 1.5, "worker": 0}, ...]}

A bare list of such entries is accepted too, and so are several documents
one after the other (one request per private address, since the API returns
at most 100,000 flows per request):

    for ip in $(seq -f 10.0.1.%g 0 255); do
        curl -s "http://127.0.0.1:9650/v1/flows?private=$ip&limit=100000"
    done | bench/trex/flows_to_csv.py > /tmp/natgw-flows.csv

Output, one line per UDP or TCP flow, duplicates removed, in input order:

    public_address,public_port,remote_address,remote_port,protocol
    198.19.1.1,40123,198.18.0.3,5001,udp

ICMP flows are left out (servers answer echo requests without help), and so
are flows of other protocols; --protocol keeps only one protocol. A summary
goes to standard error. Malformed input is reported with the entry that is
wrong, and the exit status is 1.
"""

import argparse
import ipaddress
import json
import sys

CSV_HEADER = "public_address,public_port,remote_address,remote_port,protocol"


class FlowError(ValueError):
    """An entry of the flow list is malformed."""


def documents(text):
    """Yields the JSON documents of text, which may hold several in a row."""
    decoder = json.JSONDecoder()
    i, n = 0, len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            return
        try:
            doc, i = decoder.raw_decode(text, i)
        except ValueError as e:
            raise FlowError("not JSON: %s" % e)
        yield doc


def entries(doc):
    """Returns the flow entries of one document."""
    if isinstance(doc, dict):
        if "error" in doc:
            raise FlowError("natgw answered an error: %s" % doc["error"])
        doc = doc.get("flows")
        if doc is None:
            raise FlowError('an object without "flows"')
    if not isinstance(doc, list):
        raise FlowError("flows is not a list")
    return doc


def endpoint(entry, key):
    """Parses entry[key], an "address:port" string, into (address, port)."""
    text = entry.get(key)
    if not isinstance(text, str) or ":" not in text:
        raise FlowError('%s: want "address:port", got %r' % (key, text))
    addr, _, port = text.rpartition(":")
    try:
        addr = str(ipaddress.IPv4Address(addr))
    except ValueError:
        raise FlowError("%s: %r is not an IPv4 address" % (key, addr))
    if not (port.isascii() and port.isdigit()) or int(port) > 65535:
        raise FlowError("%s: %r is not a port" % (key, port))
    return addr, int(port)


def convert(text, protocol=None):
    """Returns (csv rows, skipped count) for the JSON flow list text."""
    rows, seen, skipped = [], set(), 0
    for d, doc in enumerate(documents(text), 1):
        for i, entry in enumerate(entries(doc), 1):
            where = "document %d, flow %d" % (d, i)
            if not isinstance(entry, dict):
                raise FlowError("%s: not an object" % where)
            proto = entry.get("protocol")
            if not isinstance(proto, str):
                raise FlowError("%s: protocol: want a string, got %r" % (where, proto))
            if proto not in ("udp", "tcp") or (protocol and proto != protocol):
                skipped += 1
                continue
            try:
                public = endpoint(entry, "public")
                remote = endpoint(entry, "remote")
            except FlowError as e:
                raise FlowError("%s: %s" % (where, e))
            key = public + remote + (proto,)
            if key in seen:
                continue
            seen.add(key)
            rows.append("%s,%d,%s,%d,%s" % key)
    return rows, skipped


def main(argv=None):
    """Runs the command line; returns the exit status."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("input", nargs="?", default="-", help="JSON file (default: standard input)")
    p.add_argument("-o", "--output", default="-", help="CSV file (default: standard output)")
    p.add_argument("--protocol", choices=["udp", "tcp"], help="keep only this protocol")
    args = p.parse_args(argv)
    try:
        if args.input == "-":
            text = sys.stdin.read()
        else:
            with open(args.input) as f:
                text = f.read()
        rows, skipped = convert(text, args.protocol)
    except (OSError, FlowError) as e:
        print("flows_to_csv: %s" % e, file=sys.stderr)
        return 1
    out = "\n".join([CSV_HEADER] + rows) + "\n"
    if args.output == "-":
        sys.stdout.write(out)
    else:
        with open(args.output, "w") as f:
            f.write(out)
    print("flows_to_csv: %d flows, %d skipped" % (len(rows), skipped), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
