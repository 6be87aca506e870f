package natlog

import (
	"strconv"

	"github.com/natgw/natgw/nat"
)

// This file encodes NAT records as syslog messages (RFC 5424) whose
// structured data carries the same fields as the IPFIX records, and
// frames them for TCP by octet counting (RFC 6587 section 3.4.1).
//
//	<134>1 2026-12-05T23:59:00.123Z natgw-host natgw 4242 NAT_BLOCK
//	  [nat@32473 event="block_allocate" private="10.0.1.4"
//	  public="198.19.1.10" first="1024" last="2047" pool="web" gen="1"]
//
// (one line; no MSG part: the structured data is the message).
// The SD-ID is nat@32473: 32473 is the private enterprise number IANA
// reserves for examples and documentation (RFC 5612), as natgw has none
// of its own; collectors match it by name.

// SyslogSDID is the structured-data ID of natgw's NAT records.
const SyslogSDID = "nat@32473"

// syslogTime is the layout of TIMESTAMP: RFC 3339 in UTC with
// milliseconds (RFC 5424 section 6.2.3).
const syslogTime = "2006-01-02T15:04:05.000Z"

// syslogPRI is facility local0 (16), severity informational (6).
const syslogPRI = 16*8 + 6

// msgID returns the MSGID of a record's event.
func msgID(e NATEvent) string {
	switch e {
	case EventBlockAllocate, EventBlockRelease:
		return "NAT_BLOCK"
	case EventBindingCreate, EventBindingDelete:
		return "NAT_BINDING"
	case EventSessionCreate, EventSessionDelete:
		return "NAT_SESSION"
	}
	return "NAT_EXHAUSTED"
}

// SyslogHeader is the part of every message that does not change:
// HOSTNAME, APP-NAME and PROCID (RFC 5424 section 6.2).
type SyslogHeader struct {
	Hostname string
	AppName  string
	ProcID   int
}

// AppendSyslog appends the RFC 5424 message of r (without framing).
func AppendSyslog(b []byte, h SyslogHeader, r *Record) []byte {
	b = append(b, '<')
	b = strconv.AppendInt(b, syslogPRI, 10)
	b = append(b, ">1 "...)
	b = r.Time.UTC().AppendFormat(b, syslogTime)
	b = append(b, ' ')
	b = appendHeaderField(b, h.Hostname, 255)
	b = append(b, ' ')
	b = appendHeaderField(b, h.AppName, 48)
	b = append(b, ' ')
	if h.ProcID > 0 {
		b = strconv.AppendInt(b, int64(h.ProcID), 10)
	} else {
		b = append(b, '-')
	}
	b = append(b, ' ')
	b = append(b, msgID(r.Event)...)
	b = append(b, " ["...)
	b = append(b, SyslogSDID...)
	b = appendParam(b, "event", r.Event.Name())
	addr := func(name string, a uint32) { b = appendParam(b, name, nat.AddrFrom(a).String()) }
	num := func(name string, v uint64) {
		b = append(b, ' ')
		b = append(b, name...)
		b = append(b, `="`...)
		b = strconv.AppendUint(b, v, 10)
		b = append(b, '"')
	}
	switch templateOf(r.Event) {
	case templateBlock:
		addr("private", r.Private)
		addr("public", r.Public)
		num("first", uint64(r.First))
		num("last", uint64(r.Last))
		b = appendParam(b, "pool", r.Pool)
		num("gen", r.Generation)
	case templateBinding:
		addr("private", r.Private)
		addr("public", r.Public)
		num("gen", r.Generation)
	case templateSessionCreate, templateSessionDelete:
		b = appendParam(b, "proto", nat.ProtoName(r.Proto))
		addr("private", r.Private)
		num("privatePort", uint64(r.PrivatePort))
		addr("public", r.Public)
		num("publicPort", uint64(r.PublicPort))
		addr("remote", r.Remote)
		num("remotePort", uint64(r.RemotePort))
		if r.Event == EventSessionDelete {
			b = appendParam(b, "reason", r.Reason.Name())
		}
	case templateExhausted:
		b = appendParam(b, "proto", nat.ProtoName(r.Proto))
		addr("private", r.Private)
		addr("public", r.Public)
		addr("remote", r.Remote)
		num("remotePort", uint64(r.RemotePort))
		b = appendParam(b, "pool", r.Pool)
	case templateQuota:
		num("maxEntries", uint64(r.MaxEntries))
	}
	b = append(b, ']')
	return b
}

// appendHeaderField appends a header field: printable US-ASCII without
// spaces, at most limit characters, "-" when empty (RFC 5424 section 6).
func appendHeaderField(b []byte, s string, limit int) []byte {
	n := 0
	for i := 0; i < len(s) && n < limit; i++ {
		if c := s[i]; c > 32 && c < 127 {
			b = append(b, c)
			n++
		}
	}
	if n == 0 {
		b = append(b, '-')
	}
	return b
}

// appendParam appends ` name="value"` with '"', '\' and ']' escaped by a
// backslash (RFC 5424 section 6.3.3).
func appendParam(b []byte, name, value string) []byte {
	b = append(b, ' ')
	b = append(b, name...)
	b = append(b, `="`...)
	for i := 0; i < len(value); i++ {
		switch c := value[i]; c {
		case '"', '\\', ']':
			b = append(b, '\\', c)
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// AppendOctetCounted appends msg framed for a TCP stream by octet
// counting: its length in decimal, a space, the message (RFC 6587
// section 3.4.1).
func AppendOctetCounted(b, msg []byte) []byte {
	b = strconv.AppendInt(b, int64(len(msg)), 10)
	b = append(b, ' ')
	return append(b, msg...)
}
