package scripts

// Checks of the bare-metal traffic generator files (bench/trex,
// bench/pktgen). TRex and pktgen-dpdk need DPDK NICs and can't run here,
// so these tests check what can be checked without them: every Python file
// compiles; the TRex profiles, run against a stand-in of TRex's library,
// build the flows they promise (the field-engine program is executed here
// for every flow); flows_to_csv.py turns natgw's flow list into the CSV;
// return_pcap.py writes frames whose headers and checksums natgw's own
// parsers accept; the pktgen Lua script parses and, run against a
// stand-in of pktgen's Lua library, sets the ranges it promises; and the
// benchmark configuration validates.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/natgw/natgw/mgmt/config"
	"github.com/natgw/natgw/nat"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// requirePython returns the python3 path, or skips the test without it.
func requirePython(t *testing.T) string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed: the traffic generator scripts are not checked")
	}
	return py
}

// runPython runs a Python script with args and returns its stdout, its
// stderr and its exit code (an error only when it could not run). Bytecode
// is not written, so the source tree stays clean.
func runPython(t *testing.T, env []string, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(requirePython(t), args...)
	cmd.Env = append(append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1"), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return out.String(), errOut.String(), exit.ExitCode()
	}
	require.NoError(t, err)
	return out.String(), errOut.String(), 0
}

// TestTrafficgenPythonCompiles byte-compiles every Python file of
// bench/trex and bench/pktgen.
func TestTrafficgenPythonCompiles(t *testing.T) {
	requirePython(t)
	var files []string
	for _, dir := range []string{"../bench/trex", "../bench/pktgen"} {
		m, err := filepath.Glob(filepath.Join(dir, "*.py"))
		require.NoError(t, err)
		files = append(files, m...)
	}
	require.Len(t, files, 7, "natgw_stl.py, natgw_return.py, flows_to_csv.py, trex_rfc9693.py, rfc9693.py, test_rfc9693.py, return_pcap.py")
	cache := t.TempDir()
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			_, stderr, code := runPython(t, []string{"PYTHONPYCACHEPREFIX=" + cache}, "", "-m", "py_compile", f)
			assert.Equal(t, 0, code, stderr)
		})
	}
}

// TestRFC9693PythonUnit runs the unit tests of the RFC 9693 driver's pure
// logic (bench/trex/test_rfc9693.py: binary search, RFC 4814 port ranges,
// latency percentiles from TRex's histogram, the result file in the
// harness's fields, the whole method against a simulated natgw and TRex).
func TestRFC9693PythonUnit(t *testing.T) {
	stdout, stderr, code := runPython(t, nil, "", "-m", "unittest", "discover", "-s", "../bench/trex", "-p", "test_*.py", "-v")
	require.Equal(t, 0, code, "%s%s", stdout, stderr)
	assert.Contains(t, stderr, "OK")
	assert.NotContains(t, stderr, "skipped")
}

// TestRFC9693DriverStreams builds trex_rfc9693.py's streams against the
// stand-in of TRex's library (which keeps the real keyword names): phase 1
// a single burst of every flow with counters chained by next_var, phase 2
// continuous with random ports, and the latency stream with flow stats.
func TestRFC9693DriverStreams(t *testing.T) {
	stub := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(stub, "trex_stl_lib"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(stub, "trex_stl_lib", "__init__.py"), nil, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(stub, "trex_stl_lib", "api.py"), []byte(trexStubAPI), 0o644))
	abs, err := filepath.Abs("../bench/trex")
	require.NoError(t, err)
	script := `
import json, sys
sys.path.insert(0, sys.argv[1])
from trex_stl_lib import api
import trex_rfc9693 as d
o = d.parser().parse_args(["--flows", "4096", "--sources", "4", "--natgw", "http://x", "--natgw-mac", "02:00:00:00:00:01",
                           "--natgw-outside-mac", "02:00:00:00:00:02", "--out", "/nonexistent"])
plan = d.Plan(o)
gen = d.TRex(api, None, plan, o)
out = []
for s in (d.forward_stream(api, plan, o, 1, 1000), d.forward_stream(api, plan, o, 2, 1000), gen.latency_stream()):
    k = s.kwargs
    vm = k["packet"].kwargs.get("vm")
    vm = vm.kwargs["list_of_commands"] if vm else []
    out.append({"mode": dict(k["mode"].kwargs, kind=type(k["mode"]).__name__),
                "flow_stats": type(k["flow_stats"]).__name__ if "flow_stats" in k else "",
                "len": len(k["packet"].kwargs["pkt"]),
                "vm": [{"kind": type(i).__name__, "kwargs": i.kwargs} for i in vm]})
json.dump(out, sys.stdout)
`
	stdout, stderr, code := runPython(t, []string{"PYTHONPATH=" + stub}, "", "-c", script, abs)
	require.Equal(t, 0, code, stderr)
	var streams []struct {
		Mode      map[string]any `json:"mode"`
		FlowStats string         `json:"flow_stats"`
		Len       int            `json:"len"`
		VM        []struct {
			Kind   string         `json:"kind"`
			Kwargs map[string]any `json:"kwargs"`
		} `json:"vm"`
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &streams), stdout)
	require.Len(t, streams, 3)
	assert.Equal(t, "STLTXSingleBurst", streams[0].Mode["kind"])
	assert.EqualValues(t, 4096, streams[0].Mode["total_pkts"], "phase 1: one packet per flow")
	assert.Equal(t, "STLTXCont", streams[1].Mode["kind"])
	for i, want := range []string{"inc", "random"} {
		s := streams[i]
		assert.Equal(t, 60, s.Len, "64-byte frames")
		vars := map[string]map[string]any{}
		for _, in := range s.VM {
			if in.Kind == "STLVmFlowVar" {
				vars[in.Kwargs["name"].(string)] = in.Kwargs
				assert.Equal(t, want, in.Kwargs["op"])
			}
		}
		require.Len(t, vars, 3)
		size := func(v map[string]any) uint64 { return number(t, v["max_value"]) - number(t, v["min_value"]) + 1 }
		assert.EqualValues(t, 4096, size(vars["src"])*size(vars["sport"])*size(vars["dport"]), "ranges' product is the flows")
		assert.GreaterOrEqual(t, number(t, vars["sport"]["min_value"]), uint64(1024), "RFC 4814 source ports")
		assert.LessOrEqual(t, number(t, vars["dport"]["max_value"]), uint64(49151), "RFC 4814 destination ports")
		if want == "inc" {
			assert.Equal(t, "sport", vars["dport"]["next_var"])
			assert.Equal(t, "src", vars["sport"]["next_var"])
		} else {
			assert.Nil(t, vars["dport"]["next_var"])
		}
		assert.Equal(t, "STLVmFixIpv4", s.VM[len(s.VM)-1].Kind)
	}
	assert.Equal(t, "STLFlowLatencyStats", streams[2].FlowStats)
}

// stream is one stream as the stand-in recorded it.
type stream struct {
	Name   string         `json:"name"`
	Mode   map[string]any `json:"mode"`
	Layers []struct {
		Name   string         `json:"name"`
		Fields map[string]any `json:"fields"`
		Len    int            `json:"len"`
	} `json:"layers"`
	Len int `json:"len"`
	VM  []struct {
		Kind   string         `json:"kind"`
		Kwargs map[string]any `json:"kwargs"`
	} `json:"vm"`
}

// field returns the base packet's field "LAYER.name" and whether it is set.
func (s *stream) field(name string) (any, bool) {
	layer, f, _ := strings.Cut(name, ".")
	for _, l := range s.Layers {
		if l.Name == layer {
			v, ok := l.Fields[f]
			return v, ok
		}
	}
	return nil, false
}

// hasLayer reports whether the base packet has the named layer.
func (s *stream) hasLayer(name string) bool {
	for _, l := range s.Layers {
		if l.Name == name {
			return true
		}
	}
	return false
}

// runProfile runs a TRex profile against the stand-in library and returns
// its streams, or the profile's error message (exit 3).
func runProfile(t *testing.T, profile string, direction int, tunables ...string) ([]stream, string) {
	t.Helper()
	stub := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(stub, "trex_stl_lib"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(stub, "trex_stl_lib", "__init__.py"), nil, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(stub, "trex_stl_lib", "api.py"), []byte(trexStubAPI), 0o644))
	driver := filepath.Join(stub, "driver.py")
	require.NoError(t, os.WriteFile(driver, []byte(trexStubDriver), 0o644))
	abs, err := filepath.Abs(profile)
	require.NoError(t, err)
	args := append([]string{driver, abs, strconv.Itoa(direction)}, tunables...)
	stdout, stderr, code := runPython(t, []string{"PYTHONPATH=" + stub}, "", args...)
	if code == 3 {
		return nil, strings.TrimSpace(stderr)
	}
	require.Equal(t, 0, code, "profile failed: %s", stderr)
	var streams []stream
	require.NoError(t, json.Unmarshal([]byte(stdout), &streams), stdout)
	return streams, ""
}

// fiveTuple is a flow as a generated packet carries it.
type fiveTuple struct {
	src, dst     netip.Addr
	sport, dport uint16
}

// number returns a JSON number as uint64 (0 when absent).
func number(t *testing.T, v any) uint64 {
	t.Helper()
	if v == nil {
		return 0
	}
	f, ok := v.(float64)
	require.True(t, ok, "%v is not a number", v)
	return uint64(f)
}

// signed returns a JSON number as int64 (0 when absent).
func signed(t *testing.T, v any) int64 {
	t.Helper()
	if v == nil {
		return 0
	}
	f, ok := v.(float64)
	require.True(t, ok, "%v is not a number", v)
	return int64(f)
}

// runFieldEngine executes a stream's field-engine program the way TRex
// does for every value of its single flow variable, in increasing order,
// and returns the packets' 5-tuples in that order. Writes address the base
// packet's fields by name ("IP.src"); a masked write reads the variable,
// adds add_value, shifts (right when negative) and replaces the bits of
// mask in the pkt_cast_size bytes at the field: 4 bytes at "UDP.sport"
// cover the source and destination ports.
func runFieldEngine(t *testing.T, s stream) []fiveTuple {
	t.Helper()
	l4 := "UDP"
	if s.hasLayer("TCP") {
		l4 = "TCP"
	}
	// The fields a program may write: index in the base values, width.
	names := []string{"IP.src", "IP.dst", l4 + ".sport", l4 + ".dport"}
	widths := []int{4, 4, 2, 2}
	var base [4]uint64
	for i, name := range names {
		v, ok := s.field(name)
		require.True(t, ok, "base packet sets no %s", name)
		if widths[i] == 4 {
			a, err := netip.ParseAddr(v.(string))
			require.NoError(t, err)
			base[i] = uint64(binary.BigEndian.Uint32(a.AsSlice()))
		} else {
			base[i] = number(t, v)
		}
	}
	// write is one compiled write instruction.
	type write struct {
		field, cast int
		masked      bool
		add, mask   uint64
		shift       int64
	}
	var writes []write
	var lo, hi uint64
	vars := 0
	for _, in := range s.VM {
		switch in.Kind {
		case "STLVmFlowVar":
			vars++
			require.Equal(t, "flow", in.Kwargs["name"])
			require.EqualValues(t, 4, in.Kwargs["size"])
			lo, hi = number(t, in.Kwargs["min_value"]), number(t, in.Kwargs["max_value"])
		case "STLVmWrMaskFlowVar", "STLVmWrFlowVar":
			require.Equal(t, "flow", in.Kwargs["fv_name"])
			off, _ := in.Kwargs["pkt_offset"].(string)
			w := write{field: slices.Index(names, off), masked: in.Kind == "STLVmWrMaskFlowVar"}
			require.GreaterOrEqual(t, w.field, 0, "write to unknown field %q", off)
			w.cast = widths[w.field]
			if w.masked {
				w.cast = int(number(t, in.Kwargs["pkt_cast_size"]))
				if w.cast == 4 && widths[w.field] == 2 {
					require.Equal(t, l4+".sport", off, "a 4-byte write must cover two 2-byte fields")
				} else {
					require.Equal(t, widths[w.field], w.cast, "cast size of %s", off)
				}
				w.add, w.shift = number(t, in.Kwargs["add_value"]), signed(t, in.Kwargs["shift"])
				w.mask = number(t, in.Kwargs["mask"]) & (1<<(8*w.cast) - 1)
			} else {
				w.add, w.mask = number(t, in.Kwargs["add_val"]), 1<<(8*w.cast)-1
			}
			writes = append(writes, w)
		}
	}
	require.Equal(t, 1, vars, "one flow variable")
	require.LessOrEqual(t, lo, hi)
	require.LessOrEqual(t, hi-lo, uint64(1<<20), "too many flows to run here")
	out := make([]fiveTuple, 0, hi-lo+1)
	for v := lo; v <= hi; v++ {
		f := base
		for _, w := range writes {
			word := f[w.field]
			pair := w.cast == 4 && widths[w.field] == 2
			if pair {
				word = f[2]<<16 | f[3]
			}
			val := (v + w.add) & 0xffffffff
			if w.shift >= 0 {
				val <<= uint(w.shift)
			} else {
				val >>= uint(-w.shift)
			}
			word = word&^w.mask | val&w.mask
			if pair {
				f[2], f[3] = word>>16, word&0xffff
			} else {
				f[w.field] = word
			}
		}
		out = append(out, fiveTuple{
			src:   netip.AddrFrom4([4]byte{byte(f[0] >> 24), byte(f[0] >> 16), byte(f[0] >> 8), byte(f[0])}),
			dst:   netip.AddrFrom4([4]byte{byte(f[1] >> 24), byte(f[1] >> 16), byte(f[1] >> 8), byte(f[1])}),
			sport: uint16(f[2]), dport: uint16(f[3]),
		})
	}
	return out
}

// TestTRexProfileFlows runs natgw_stl.py with several tunables and checks
// the flows its field engine generates: exactly the promised number, all
// distinct, sources within the private prefix, servers within
// 198.18.0.0/16, source ports in their range, destinations changing from
// one packet to the next, 60-byte packets for 64-byte frames.
func TestTRexProfileFlows(t *testing.T) {
	servers := netip.MustParsePrefix("198.18.0.0/16")
	private := netip.MustParsePrefix("10.0.0.0/8")
	tests := []struct {
		name        string
		tunables    []string
		srcNet      string
		sources     int
		dstNet      string
		dsts        int
		flows       int
		portBase    uint16
		dport       uint16
		frameLen    int
		mode        string
		op          string
		proto       string
		hwChecksums bool
	}{
		{
			name:   "defaults, test phase",
			srcNet: "10.0.1.0/24", sources: 256, dstNet: "198.18.0.0/16", dsts: 16,
			flows: 65536, portBase: 1024, dport: 5001, frameLen: 60, mode: "STLTXCont", op: "inc", proto: "UDP",
		},
		{
			name:     "preliminary phase sends each flow once",
			tunables: []string{"--phase", "preliminary", "--src-net", "10.0.2.0/28", "--sources", "16", "--destinations", "4", "--flows", "1024"},
			srcNet:   "10.0.2.0/28", sources: 16, dstNet: "198.18.0.0/16", dsts: 4,
			flows: 1024, portBase: 1024, dport: 5001, frameLen: 60, mode: "STLTXSingleBurst", op: "inc", proto: "UDP",
		},
		{
			name:     "random order, other prefixes, larger frames",
			tunables: []string{"--order", "random", "--src-net", "10.8.0.0/16", "--sources", "64", "--dst-net", "198.18.4.0/24", "--destinations", "8", "--flows", "2048", "--src-port-base", "4096", "--dst-port", "53", "--size", "128"},
			srcNet:   "10.8.0.0/16", sources: 64, dstNet: "198.18.4.0/24", dsts: 8,
			flows: 2048, portBase: 4096, dport: 53, frameLen: 124, mode: "STLTXCont", op: "random", proto: "UDP",
		},
		{
			name:     "counter wider than 16 bits below the ports",
			tunables: []string{"--src-net", "10.0.8.0/21", "--sources", "2048", "--destinations", "64", "--flows", "262144", "--src-port-base", "40000"},
			srcNet:   "10.0.8.0/21", sources: 2048, dstNet: "198.18.0.0/16", dsts: 64,
			flows: 262144, portBase: 40000, dport: 5001, frameLen: 60, mode: "STLTXCont", op: "inc", proto: "UDP",
		},
		{
			name:     "one source, one server: ports only",
			tunables: []string{"--sources", "1", "--destinations", "1", "--flows", "512"},
			srcNet:   "10.0.1.0/32", sources: 1, dstNet: "198.18.0.0/32", dsts: 1,
			flows: 512, portBase: 1024, dport: 5001, frameLen: 60, mode: "STLTXCont", op: "inc", proto: "UDP",
		},
		{
			name:     "TCP SYN with checksum offload",
			tunables: []string{"--proto", "tcp", "--sources", "4", "--destinations", "4", "--flows", "64"},
			srcNet:   "10.0.1.0/24", sources: 4, dstNet: "198.18.0.0/16", dsts: 4,
			flows: 64, portBase: 1024, dport: 5001, frameLen: 60, mode: "STLTXCont", op: "inc", proto: "TCP", hwChecksums: true,
		},
		{
			name:     "old-style keyword tunables",
			tunables: []string{"--kwargs", "sources=8", "destinations=2", "flows=32", "phase=preliminary", "port_id=0"},
			srcNet:   "10.0.1.0/24", sources: 8, dstNet: "198.18.0.0/16", dsts: 2,
			flows: 32, portBase: 1024, dport: 5001, frameLen: 60, mode: "STLTXSingleBurst", op: "inc", proto: "UDP",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			streams, msg := runProfile(t, "../bench/trex/natgw_stl.py", 0, tt.tunables...)
			require.Empty(t, msg)
			require.Len(t, streams, 1)
			s := streams[0]
			assert.Equal(t, tt.frameLen, s.Len, "packet length without FCS")
			assert.True(t, s.hasLayer(tt.proto), "layers %v", s.Layers)
			assert.Equal(t, tt.mode, s.Mode["kind"])
			if tt.mode == "STLTXSingleBurst" {
				assert.EqualValues(t, tt.flows, s.Mode["total_pkts"], "one packet per flow")
			}
			for _, in := range s.VM {
				if in.Kind == "STLVmFlowVar" {
					assert.Equal(t, tt.op, in.Kwargs["op"])
				}
			}
			last := s.VM[len(s.VM)-1]
			if tt.hwChecksums {
				assert.Equal(t, "STLVmFixChecksumHw", last.Kind)
				assert.Equal(t, tt.proto, last.Kwargs["l4_offset"])
			} else {
				assert.Equal(t, "STLVmFixIpv4", last.Kind, "IPv4 checksum fixed after the writes")
				assert.Equal(t, "IP", last.Kwargs["offset"])
				ck, ok := s.field("UDP.chksum")
				assert.True(t, ok && ck == 0.0, "UDP checksum zero, got %v", ck)
			}

			tuples := runFieldEngine(t, s)
			require.Len(t, tuples, tt.flows)
			srcNet, dstNet := netip.MustParsePrefix(tt.srcNet), netip.MustParsePrefix(tt.dstNet)
			ports := uint16(tt.flows / tt.sources / tt.dsts)
			seen := map[fiveTuple]bool{}
			srcs, dsts := map[netip.Addr]bool{}, map[netip.Addr]bool{}
			for _, f := range tuples {
				seen[f] = true
				srcs[f.src], dsts[f.dst] = true, true
				if !srcNet.Contains(f.src) || !private.Contains(f.src) {
					assert.Fail(t, "source outside the private prefix", "%v not in %v", f.src, srcNet)
				}
				if !dstNet.Contains(f.dst) || !servers.Contains(f.dst) {
					assert.Fail(t, "server outside 198.18.0.0/16", "%v not in %v", f.dst, dstNet)
				}
				if f.sport < tt.portBase || f.sport >= tt.portBase+ports || f.dport != tt.dport {
					assert.Fail(t, "ports out of range", "%+v", f)
				}
			}
			assert.Equal(t, tt.flows, len(seen), "every flow distinct")
			assert.Equal(t, tt.sources, len(srcs), "sources")
			assert.Equal(t, tt.dsts, len(dsts), "servers")
			if tt.dsts > 1 {
				assert.NotEqual(t, tuples[0].dst, tuples[1].dst, "consecutive packets go to different servers")
			}
		})
	}
}

// TestTRexProfileDirections checks that natgw_stl.py sends only from the
// inside port (direction 0).
func TestTRexProfileDirections(t *testing.T) {
	for _, tt := range []struct {
		direction int
		want      int
	}{{0, 1}, {1, 0}, {2, 1}} {
		t.Run(fmt.Sprintf("direction %d", tt.direction), func(t *testing.T) {
			streams, msg := runProfile(t, "../bench/trex/natgw_stl.py", tt.direction, "--flows", "4096")
			require.Empty(t, msg)
			assert.Len(t, streams, tt.want)
		})
	}
}

// TestTRexProfileRejects checks that bad tunables are errors naming the
// problem, not tracebacks or silently wrong traffic.
func TestTRexProfileRejects(t *testing.T) {
	tests := []struct {
		name     string
		tunables []string
		want     string
	}{
		{"sources not a power of two", []string{"--sources", "100"}, "--sources must be a power of two"},
		{"sources outside 10/8", []string{"--src-net", "192.168.0.0/24"}, "is not inside 10.0.0.0/8"},
		{"servers outside 198.18/16", []string{"--dst-net", "198.19.0.0/24"}, "is not inside 198.18.0.0/16"},
		{"prefix with host bits", []string{"--src-net", "10.0.1.1/24"}, "--src-net"},
		{"more sources than the prefix", []string{"--src-net", "10.0.1.0/28"}, "exceeds --src-net"},
		{"flows not a multiple", []string{"--flows", "1000"}, "not a multiple of sources x destinations"},
		{"ports beyond the block", []string{"--flows", "8388608"}, "port_exhausted"},
		{"port base not aligned", []string{"--src-port-base", "1000"}, "--src-port-base 1000"},
		{"frame too small", []string{"--size", "60"}, "--size 60"},
		{"zero TCP checksum", []string{"--proto", "tcp", "--l4-checksum", "zero"}, "TCP checksum can't be zero"},
		{"unknown tunable", []string{"--bogus", "1"}, "unrecognized arguments"},
		{"not a number", []string{"--flows", "many"}, "invalid int value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			streams, msg := runProfile(t, "../bench/trex/natgw_stl.py", 0, tt.tunables...)
			assert.Nil(t, streams)
			assert.Contains(t, msg, tt.want)
		})
	}
}

// flowsJSON is a GET /v1/flows body in the shape of SPEC section 6.
const flowsJSON = `{"flows": [
 {"protocol": "udp", "private": "10.0.1.4:1024", "public": "198.19.1.1:40123", "remote": "198.18.0.3:5001", "state": "udp", "idle_seconds": 1.5, "worker": 0},
 {"protocol": "icmp", "private": "10.0.1.4:7", "public": "198.19.1.1:7", "remote": "198.18.0.3:0", "state": "icmp", "idle_seconds": 0.2, "worker": 1},
 {"protocol": "tcp", "private": "10.0.1.5:2000", "public": "198.19.1.2:1030", "remote": "198.18.0.4:80", "state": "syn_sent", "idle_seconds": 0, "worker": 1},
 {"protocol": "udp", "private": "10.0.1.6:1025", "public": "198.19.1.1:65535", "remote": "198.18.1.0:5001", "state": "udp", "idle_seconds": 3, "worker": 0}
]}`

// TestFlowsToCSV runs flows_to_csv.py on flow lists and checks the CSV, or
// the error for malformed ones.
func TestFlowsToCSV(t *testing.T) {
	const header = "public_address,public_port,remote_address,remote_port,protocol\n"
	tests := []struct {
		name  string
		input string
		args  []string
		want  string // the CSV, or a part of the error message
		fails bool
	}{
		{
			name:  "API response: ICMP left out",
			input: flowsJSON,
			want: header + "198.19.1.1,40123,198.18.0.3,5001,udp\n" +
				"198.19.1.2,1030,198.18.0.4,80,tcp\n198.19.1.1,65535,198.18.1.0,5001,udp\n",
		},
		{
			name:  "only TCP",
			input: flowsJSON,
			args:  []string{"--protocol", "tcp"},
			want:  header + "198.19.1.2,1030,198.18.0.4,80,tcp\n",
		},
		{
			name: "several responses and a bare list, duplicates removed",
			input: flowsJSON + "\n" + `[{"protocol": "udp", "private": "10.0.1.4:1024", "public": "198.19.1.1:40123", "remote": "198.18.0.3:5001"}]` +
				`{"flows": [{"protocol": "udp", "private": "10.0.1.9:1024", "public": "198.19.1.3:2048", "remote": "198.18.0.9:5001"}]}`,
			want: header + "198.19.1.1,40123,198.18.0.3,5001,udp\n198.19.1.2,1030,198.18.0.4,80,tcp\n" +
				"198.19.1.1,65535,198.18.1.0,5001,udp\n198.19.1.3,2048,198.18.0.9,5001,udp\n",
		},
		{name: "no flows", input: `{"flows": []}`, want: header},
		{name: "not JSON", input: `{"flows": [`, want: "not JSON", fails: true},
		{name: "an API error", input: `{"error": "limit: \"x\" is not a number"}`, want: "natgw answered an error", fails: true},
		{name: "flows not a list", input: `{"flows": 3}`, want: "flows is not a list", fails: true},
		{
			name:  "endpoint without a port",
			input: `{"flows": [{"protocol": "udp", "public": "198.19.1.1", "remote": "198.18.0.3:5001"}]}`,
			want:  "document 1, flow 1: public", fails: true,
		},
		{
			name:  "port out of range",
			input: `{"flows": [{"protocol": "udp", "public": "198.19.1.1:70000", "remote": "198.18.0.3:5001"}]}`,
			want:  "'70000' is not a port", fails: true,
		},
		{
			name:  "IPv6 remote",
			input: `{"flows": [{"protocol": "udp", "public": "198.19.1.1:1", "remote": "[2001:db8::1]:53"}]}`,
			want:  "remote: '[2001:db8::1]' is not an IPv4 address", fails: true,
		},
		{
			name:  "protocol missing",
			input: `{"flows": [{"public": "198.19.1.1:1", "remote": "198.18.0.3:53"}]}`,
			want:  "protocol: want a string", fails: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runPython(t, nil, tt.input, append([]string{"../bench/trex/flows_to_csv.py"}, tt.args...)...)
			if tt.fails {
				assert.Equal(t, 1, code)
				assert.Contains(t, stderr, tt.want)
				assert.NotContains(t, stderr, "Traceback")
				return
			}
			require.Equal(t, 0, code, stderr)
			assert.Equal(t, tt.want, stdout)
		})
	}
}

// TestReturnProfile feeds natgw_return.py a CSV written by flows_to_csv.py
// and checks one stream per flow, each from the server to exactly the
// public endpoint natgw chose.
func TestReturnProfile(t *testing.T) {
	dir := t.TempDir()
	csvPath := filepath.Join(dir, "flows.csv")
	_, stderr, code := runPython(t, nil, flowsJSON, "../bench/trex/flows_to_csv.py", "-o", csvPath)
	require.Equal(t, 0, code, stderr)
	bad := filepath.Join(dir, "bad.csv")
	require.NoError(t, os.WriteFile(bad, []byte("198.19.1.1,40123,198.18.0.300,5001,udp\n"), 0o644))

	tests := []struct {
		name     string
		tunables []string
		frameLen int
		err      string
	}{
		{name: "64-byte frames", tunables: []string{"--csv", csvPath, "--pps", "3000"}, frameLen: 60},
		{name: "256-byte frames, zero UDP checksums", tunables: []string{"--csv", csvPath, "--size", "256", "--udp-checksum", "zero"}, frameLen: 252},
		{name: "more flows than streams allowed", tunables: []string{"--csv", csvPath, "--max-streams", "2"}, err: "exceed --max-streams 2"},
		{name: "bad address in the CSV", tunables: []string{"--csv", bad}, err: "bad.csv:1: '198.18.0.300' is not an IPv4 address"},
		{name: "no CSV", tunables: nil, err: "--csv"},
	}
	want := []struct {
		src, dst     string
		sport, dport float64
		proto        string
	}{
		{"198.18.0.3", "198.19.1.1", 5001, 40123, "UDP"},
		{"198.18.0.4", "198.19.1.2", 80, 1030, "TCP"},
		{"198.18.1.0", "198.19.1.1", 5001, 65535, "UDP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			streams, msg := runProfile(t, "../bench/trex/natgw_return.py", 1, tt.tunables...)
			if tt.err != "" {
				assert.Contains(t, msg, tt.err)
				return
			}
			require.Empty(t, msg)
			require.Len(t, streams, len(want))
			for i, w := range want {
				s := streams[i]
				assert.Equal(t, tt.frameLen, s.Len)
				assert.Equal(t, "STLTXCont", s.Mode["kind"])
				src, _ := s.field("IP.src")
				dst, _ := s.field("IP.dst")
				sport, _ := s.field(w.proto + ".sport")
				dport, _ := s.field(w.proto + ".dport")
				assert.Equal(t, []any{w.src, w.dst, w.sport, w.dport}, []any{src, dst, sport, dport}, "stream %d", i)
				assert.Empty(t, s.VM, "fixed packets need no field engine")
			}
			if len(tt.tunables) > 2 && tt.tunables[2] == "--pps" {
				assert.InDelta(t, 1000.0, streams[0].Mode["pps"], 1e-9, "rate shared by the flows")
			}
		})
	}
}

// naiveChecksum is the RFC 1071 checksum of b added to initial, byte by
// byte: the oracle for the generated frames.
func naiveChecksum(b []byte, initial uint32) uint16 {
	sum := initial
	for i := 0; i < len(b); i += 2 {
		w := uint32(b[i]) << 8
		if i+1 < len(b) {
			w |= uint32(b[i+1])
		}
		sum += w
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// pcapRecord is one packet of a classic pcap file.
type pcapRecord struct {
	sec, usec uint32
	data      []byte
	origLen   int
}

// readPcap parses a classic little-endian microsecond pcap file and checks
// its global header: version 2.4, Ethernet link type.
func readPcap(t *testing.T, b []byte) []pcapRecord {
	t.Helper()
	require.GreaterOrEqual(t, len(b), 24, "global header")
	le := binary.LittleEndian
	require.Equal(t, uint32(0xa1b2c3d4), le.Uint32(b), "magic: little-endian, microseconds")
	assert.Equal(t, uint16(2), le.Uint16(b[4:]), "major version")
	assert.Equal(t, uint16(4), le.Uint16(b[6:]), "minor version")
	snap := le.Uint32(b[16:])
	assert.GreaterOrEqual(t, snap, uint32(9216), "snaplen")
	assert.Equal(t, uint32(1), le.Uint32(b[20:]), "link type Ethernet")
	var recs []pcapRecord
	for off := 24; off < len(b); {
		require.GreaterOrEqual(t, len(b)-off, 16, "record header at %d", off)
		incl, orig := int(le.Uint32(b[off+8:])), int(le.Uint32(b[off+12:]))
		require.LessOrEqual(t, incl, int(snap))
		require.GreaterOrEqual(t, len(b)-off-16, incl, "record data at %d", off)
		recs = append(recs, pcapRecord{sec: le.Uint32(b[off:]), usec: le.Uint32(b[off+4:]),
			data: b[off+16 : off+16+incl], origLen: orig})
		off += 16 + incl
	}
	return recs
}

// TestReturnPcap runs return_pcap.py on a flow CSV and parses the pcap:
// one frame per flow, with the MACs asked for, IPv4 headers natgw's parser
// accepts, UDP/TCP headers addressed from the server to the public
// endpoint and checksums that match a naive computation.
func TestReturnPcap(t *testing.T) {
	dir := t.TempDir()
	csvPath := filepath.Join(dir, "flows.csv")
	_, stderr, code := runPython(t, nil, flowsJSON, "../bench/trex/flows_to_csv.py", "-o", csvPath)
	require.Equal(t, 0, code, stderr)
	type flow struct {
		src, dst     string
		sport, dport uint16
		proto        uint8
	}
	flows := []flow{
		{"198.18.0.3", "198.19.1.1", 5001, 40123, nat.ProtoUDP},
		{"198.18.0.4", "198.19.1.2", 80, 1030, nat.ProtoTCP},
		{"198.18.1.0", "198.19.1.1", 5001, 65535, nat.ProtoUDP},
	}
	dstMAC := []byte{0x3c, 0xfd, 0xfe, 0, 0, 2}
	srcMAC := []byte{0x02, 0, 0, 0, 0, 2}
	tests := []struct {
		name     string
		args     []string
		frameLen int
		zeroUDP  bool
		tcpFlags uint8
	}{
		{name: "64-byte frames", args: []string{"--dst-mac", "3c:fd:fe:00:00:02"}, frameLen: 60, tcpFlags: 0x12},
		{name: "odd size, zero UDP checksums, ACK", args: []string{"--dst-mac", "3c:fd:fe:00:00:02", "--size", "129", "--udp-checksum", "zero", "--tcp-flags", "A"}, frameLen: 125, zeroUDP: true, tcpFlags: 0x10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "return.pcap")
			_, stderr, code := runPython(t, nil, "", append([]string{"../bench/pktgen/return_pcap.py", "-o", out, csvPath}, tt.args...)...)
			require.Equal(t, 0, code, stderr)
			b, err := os.ReadFile(out)
			require.NoError(t, err)
			recs := readPcap(t, b)
			require.Len(t, recs, len(flows))
			for i, r := range recs {
				f := flows[i]
				require.Len(t, r.data, tt.frameLen, "frame %d", i)
				assert.Equal(t, tt.frameLen, r.origLen)
				assert.Equal(t, uint32(i), r.sec*1000000+r.usec, "timestamps in order")
				eth, ok := nat.ParseEthernet(r.data)
				require.True(t, ok)
				assert.Equal(t, dstMAC, eth.DstMAC())
				assert.Equal(t, srcMAC, eth.SrcMAC())
				assert.Equal(t, uint16(nat.EtherTypeIPv4), binary.BigEndian.Uint16(r.data[12:]))
				ip, ok := nat.ParseIPv4(r.data[nat.EthernetLen:])
				require.True(t, ok, "frame %d: IPv4 header (natgw's parser checks its checksum)", i)
				assert.Equal(t, uint16(0), naiveChecksum(r.data[nat.EthernetLen:nat.EthernetLen+20], 0), "header checksum")
				assert.Equal(t, tt.frameLen-nat.EthernetLen, ip.TotalLen())
				assert.Equal(t, uint8(64), ip.TTL())
				assert.False(t, ip.IsFragment())
				assert.Equal(t, f.proto, ip.Protocol())
				assert.Equal(t, netip.MustParseAddr(f.src), nat.AddrFrom(ip.Src()))
				assert.Equal(t, netip.MustParseAddr(f.dst), nat.AddrFrom(ip.Dst()))
				seg := ip.Payload()
				pseudo := ip.Src()>>16 + ip.Src()&0xffff + ip.Dst()>>16 + ip.Dst()&0xffff + uint32(f.proto) + uint32(len(seg))
				if f.proto == nat.ProtoUDP {
					u, ok := nat.ParseUDP(seg)
					require.True(t, ok)
					assert.Equal(t, len(seg), u.Length())
					assert.Equal(t, [2]uint16{f.sport, f.dport}, [2]uint16{u.SrcPort(), u.DstPort()})
					if tt.zeroUDP {
						assert.Equal(t, uint16(0), u.Checksum())
					} else {
						assert.NotEqual(t, uint16(0), u.Checksum())
						assert.Equal(t, uint16(0), naiveChecksum(seg, pseudo), "UDP checksum")
					}
					continue
				}
				tcp, ok := nat.ParseTCP(seg)
				require.True(t, ok)
				assert.Equal(t, [2]uint16{f.sport, f.dport}, [2]uint16{tcp.SrcPort(), tcp.DstPort()})
				assert.Equal(t, tt.tcpFlags, tcp.Flags())
				assert.Equal(t, 20, tcp.HeaderLen())
				assert.Equal(t, uint16(0), naiveChecksum(seg, pseudo), "TCP checksum")
			}
		})
	}
}

// TestReturnPcapRejects checks that bad options and input are errors with
// a message and exit status 1, and write no pcap.
func TestReturnPcapRejects(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		csv  string
		args []string
		want string
	}{
		{"bad MAC", "198.19.1.1,1,198.18.0.1,53,udp\n", []string{"--dst-mac", "02:00:00:00:00"}, "is not a MAC address"},
		{"bad address", "198.19.1.1,1,198.18.0.256,53,udp\n", []string{"--dst-mac", "02:00:00:00:00:01"}, "in.csv:1: '198.18.0.256' is not an IPv4 address"},
		{"bad port", "public_address,public_port,remote_address,remote_port,protocol\n198.19.1.1,-1,198.18.0.1,53,udp\n", []string{"--dst-mac", "02:00:00:00:00:01"}, "in.csv:2: '-1' is not a port"},
		{"ICMP row", "198.19.1.1,1,198.18.0.1,0,icmp\n", []string{"--dst-mac", "02:00:00:00:00:01"}, "protocol 'icmp' is not udp or tcp"},
		{"too few fields", "198.19.1.1,1,198.18.0.1\n", []string{"--dst-mac", "02:00:00:00:00:01"}, "want 4 or 5 fields"},
		{"no flows", "public_address,public_port,remote_address,remote_port,protocol\n", []string{"--dst-mac", "02:00:00:00:00:01"}, "no flows"},
		{"bad TCP flag", "198.19.1.1,1,198.18.0.1,53,tcp\n", []string{"--dst-mac", "02:00:00:00:00:01", "--tcp-flags", "SX"}, "TCP flag 'X'"},
		{"frame too small", "198.19.1.1,1,198.18.0.1,53,udp\n", []string{"--dst-mac", "02:00:00:00:00:01", "--size", "63"}, "--size 63"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := filepath.Join(dir, "in.csv")
			require.NoError(t, os.WriteFile(in, []byte(tt.csv), 0o644))
			out := filepath.Join(t.TempDir(), "return.pcap")
			_, stderr, code := runPython(t, nil, "", append([]string{"../bench/pktgen/return_pcap.py", "-o", out, in}, tt.args...)...)
			assert.Equal(t, 1, code)
			assert.Contains(t, stderr, tt.want)
			assert.NotContains(t, stderr, "Traceback")
			assert.NoFileExists(t, out)
		})
	}
}

// pktgenStub stands in for pktgen's Lua library: it records every call as
// a line "function arg...", answers portStats with growing counters and
// prints the record after the script ran.
const pktgenStub = `
calls = {}
local sent = 0
local function rec(name)
	return function(...)
		local t = { name }
		for _, v in ipairs({ ... }) do t[#t + 1] = tostring(v) end
		calls[#calls + 1] = table.concat(t, " ")
	end
end
pktgen = setmetatable({ range = setmetatable({}, { __index = function(_, k) return rec("range." .. k) end }) },
	{ __index = function(_, k) return rec(k) end })
pktgen.portStats = function(port)
	sent = sent + 250000
	local r = {}
	r[tonumber(port)] = { opackets = sent, ipackets = sent }
	return r
end
function printf(fmt, ...) io.stderr:write(string.format(fmt, ...)) end
dofile(arg[1])
for _, c in ipairs(calls) do print(c) end
`

// findLua returns the path of the first of names on PATH, or "".
func findLua(names ...string) string {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	return ""
}

// TestPktgenScript checks natgw.lua's syntax with luac and runs it against
// a stand-in of pktgen's library: the ranges cover the private sources and
// the servers, the flow count is the product of pairwise coprime counts,
// phase 2 replays the pcap on the outside port, and bad settings are
// errors.
func TestPktgenScript(t *testing.T) {
	luac := findLua("luac5.3", "luac5.4", "luac")
	if luac == "" {
		t.Skip("luac not installed (apt-get install lua5.3): natgw.lua not checked")
	}
	out, err := exec.Command(luac, "-p", "../bench/pktgen/natgw.lua").CombinedOutput()
	require.NoError(t, err, "luac -p: %s", out)

	lua := findLua("lua5.3", "lua5.4")
	if lua == "" {
		t.Skip("lua5.3 not installed: natgw.lua only syntax-checked")
	}
	stub := filepath.Join(t.TempDir(), "stub.lua")
	require.NoError(t, os.WriteFile(stub, []byte(pktgenStub), 0o644))
	tests := []struct {
		name   string
		env    []string
		want   []string // calls that must be made
		flows  int
		search uint64 // phase 3: the throughput the search must find
		err    string
	}{
		{
			name: "phase 1 defaults",
			want: []string{
				"range.src_ip 0 min 10.0.1.0", "range.src_ip 0 max 10.0.1.255", "range.src_ip 0 inc 0.0.0.1",
				"range.dst_ip 0 min 198.18.0.1", "range.dst_ip 0 max 198.18.0.15",
				"range.src_port 0 min 1024", "range.src_port 0 max 1280", "range.dst_port 0 inc 0",
				"range.pkt_size 0 start 64", "set_range 0 on", "set 0 count 986880", "start 0", "stop 0",
			},
			flows: 986880,
		},
		{
			name: "phase 2 replays the return pcap",
			env:  []string{"NATGW_PHASE=2", "NATGW_SOURCES=16", "NATGW_SRC=10.0.2.0", "NATGW_DESTINATIONS=3", "NATGW_SPORTS=7", "NATGW_DST_MAC=3c:fd:fe:00:00:01", "NATGW_DURATION=5"},
			want: []string{
				"range.src_ip 0 max 10.0.2.15", "range.dst_ip 0 max 198.18.0.3", "range.src_port 0 max 1030",
				"range.dst_mac 0 start 3c:fd:fe:00:00:01", "set 0 count 0", "pcap 1 on", "start 0,1", "delay 5000", "stop 0,1",
			},
		},
		{
			name: "phase 3 searches the two-way rate",
			env:  []string{"NATGW_PHASE=3", "NATGW_STEP=1", "NATGW_MAX_PPS=2000000"},
			want: []string{"pcap 1 on", "start 0,1", "delay 1000", "stop 0,1", "set 0 count 0"},
			// The stand-in's counters grow by 1 M frames per step, both
			// ways, lost none: the search ends at what the generator
			// offered, 1 M pps.
			search: 1000000,
		},
		{name: "counts not coprime", env: []string{"NATGW_DESTINATIONS=16"}, err: "pairwise coprime"},
		{name: "sources outside 10/8", env: []string{"NATGW_SRC=192.168.0.1"}, err: "10.0.0.0/8"},
		{name: "servers outside 198.18/16", env: []string{"NATGW_DST=198.18.255.250"}, err: "198.18.0.0/16"},
		{name: "more ports than the block", env: []string{"NATGW_SPORTS=1031", "NATGW_BLOCK=1024"}, err: "port_exhausted"},
		{name: "bad number", env: []string{"NATGW_RATE=fast"}, err: "NATGW_RATE must be an integer"},
		{name: "bad address", env: []string{"NATGW_SRC=10.0.1.300"}, err: "is not an IPv4 address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(lua, stub, "../bench/pktgen/natgw.lua")
			out := t.TempDir()
			cmd.Env = append(append(os.Environ(), tt.env...), "NATGW_OUT="+out)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if tt.err != "" {
				assert.Error(t, err)
				assert.Contains(t, stderr.String(), tt.err)
				return
			}
			require.NoError(t, err, stderr.String())
			calls := strings.Split(strings.TrimSpace(stdout.String()), "\n")
			for _, w := range tt.want {
				assert.Contains(t, calls, w)
			}
			if tt.flows > 0 {
				assert.Contains(t, stderr.String(), fmt.Sprintf("natgw phase 1: %d flows", tt.flows))
			}
			if tt.search > 0 {
				b, err := os.ReadFile(filepath.Join(out, "rfc9693-986880.json"))
				require.NoError(t, err)
				var run map[string]any
				require.NoError(t, json.Unmarshal(b, &run), string(b))
				for _, k := range []string{"flows", "flow_capacity", "sources", "step_s", "connections_per_s", "connection_steps",
					"throughput_pps", "throughput_steps", "generator_max_offered_pps", "pdr_pps", "pdr_steps", "latency"} {
					assert.Contains(t, run, k, "the harness's rfcRun field")
				}
				got := number(t, run["throughput_pps"])
				assert.LessOrEqual(t, got, uint64(float64(tt.search)/0.999), "within 0.1 %% of what was offered")
				assert.Greater(t, got, tt.search-tt.search/50, "within the resolution (1 %% of the maximum)")
				pdr := number(t, run["pdr_pps"])
				assert.InDelta(t, float64(got), float64(pdr), float64(tt.search)/50, "PDR: nothing lost, the same rate")
				steps := run["throughput_steps"].([]any)
				first := steps[0].(map[string]any)
				assert.EqualValues(t, 2000000, first["rate_pps"], "the maximum first")
				assert.Equal(t, true, first["generator_limited"])
				for _, st := range steps {
					assert.ElementsMatch(t, []string{"rate_pps", "pass", "lost", "offered", "seconds"},
						keysWithout(st.(map[string]any), "generator_limited"), "searchStep fields")
				}
				assert.Equal(t, []any{}, run["latency"], "no latency from pktgen")
			}
		})
	}
}

// keysWithout returns m's keys other than skip.
func keysWithout(m map[string]any, skip string) []string {
	var ks []string
	for k := range m {
		if k != skip {
			ks = append(ks, k)
		}
	}
	return ks
}

// pktgenUnit loads natgw.lua's functions without running it and checks
// the binary search and the JSON writer, printing the JSON it wrote.
const pktgenUnit = `
pktgen = {}
function printf() end
local natgw = dofile(arg[1])
local function threshold(limit)
	return function(rate) return natgw.search_step(rate, rate <= limit and rate or rate - 1, 1, rate) end
end
for _, limit in ipairs({ 1000, 1234, 56789, 99999, 100000 }) do
	local r, steps = natgw.binary_search(1000, 100000, 10, threshold(limit))
	assert(r <= limit and limit - r <= 10, "limit " .. limit .. " found " .. r)
	assert(steps[1].rate_pps == 100000, "hi first")
end
assert(natgw.binary_search(1000, 100000, 10, threshold(999)) == 0, "lo failing is 0")
assert(not pcall(natgw.binary_search, 0, 10, 1, threshold(5)), "bad bounds")
local limited = natgw.search_step(100, 100, 1, 1000)
assert(limited.pass and limited.generator_limited, "generator limited")
io.write(natgw.json({ a = { 1, 2.5, "q\"\\\n" }, b = true, c = { x = 1 } }))
`

// TestPktgenUnit checks natgw.lua's binary search and JSON writer.
func TestPktgenUnit(t *testing.T) {
	lua := findLua("lua5.3", "lua5.4")
	if lua == "" {
		t.Skip("lua5.3 not installed: natgw.lua's functions not checked")
	}
	stub := filepath.Join(t.TempDir(), "unit.lua")
	require.NoError(t, os.WriteFile(stub, []byte(pktgenUnit), 0o644))
	cmd := exec.Command(lua, stub, "../bench/pktgen/natgw.lua")
	cmd.Env = append(os.Environ(), "NATGW_LUA_NO_MAIN=1")
	out, err := cmd.Output()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		t.Fatalf("%s", exit.Stderr)
	}
	require.NoError(t, err)
	var v map[string]any
	require.NoError(t, json.Unmarshal(out, &v), string(out))
	assert.Equal(t, map[string]any{"a": []any{1.0, 2.5, "q\"\\\n"}, "b": true, "c": map[string]any{"x": 1.0}}, v)
}

// TestBenchConfigValidates loads the benchmark configuration with natgw's
// own parser and checks it serves the profiles' default sources.
func TestBenchConfigValidates(t *testing.T) {
	c, err := config.Load("../bench/trex/natgw-bench.toml")
	require.NoError(t, err)
	require.NotNil(t, c.DefaultSNAT)
	inside := c.InsidePrefix().Masked()
	sources, err := c.DefaultSNAT.SourcePrefixes()
	require.NoError(t, err)
	for _, a := range []string{"10.0.1.0", "10.0.1.255", "10.0.2.15"} {
		addr := netip.MustParseAddr(a)
		assert.True(t, inside.Contains(addr), "%s on the inside link %s", a, inside)
		covered := false
		for _, p := range sources {
			covered = covered || p.Contains(addr)
		}
		assert.True(t, covered, "%s gets default SNAT", a)
	}
	blocksPerFrontend := (65535 - 1024 + 1) / c.DefaultSNAT.PortsPerMember
	assert.GreaterOrEqual(t, blocksPerFrontend*len(c.DefaultSNAT.Frontends), 256, "room for 256 sources")
	assert.GreaterOrEqual(t, c.DefaultSNAT.PortsPerMember, 257, "pktgen's default 257 ports per source and server")
}

// The stand-in for TRex's Python library that trafficgen_test.go runs the
// profiles against. TRex can't run here (no DPDK NICs), so a fake
// trex_stl_lib.api records what a profile builds: streams, their modes, the
// base packet's layers and fields, and the field-engine program. It keeps
// the real constructors' keyword names, so a misspelt keyword fails as it
// would in TRex, and the checks TRex makes on flow variables. dumpProfile
// runs a profile's get_streams through it and returns the record as JSON.

// trexStubAPI is trex_stl_lib/api.py of the stand-in.
const trexStubAPI = `
"""Stand-in for TRex's trex_stl_lib.api: records what a profile builds."""


class Packet(object):
    def __init__(self, layers):
        self.layers = layers

    def __truediv__(self, other):
        if isinstance(other, (bytes, str)):
            other = Packet([("Raw", {"load_len": len(other)}, len(other))])
        return Packet(self.layers + other.layers)

    def __len__(self):
        return sum(l[2] for l in self.layers)

    def dump(self):
        return [{"name": n, "fields": f, "len": l} for n, f, l in self.layers]


def _layer(name, length, allowed):
    def make(**fields):
        for k in fields:
            if k not in allowed:
                raise TypeError("%s has no field %s" % (name, k))
        return Packet([(name, dict(fields), length)])
    return make


Ether = _layer("Ether", 14, {"src", "dst", "type"})
IP = _layer("IP", 20, {"src", "dst", "ttl", "id", "tos", "proto", "flags", "len"})
UDP = _layer("UDP", 8, {"sport", "dport", "chksum", "len"})
TCP = _layer("TCP", 20, {"sport", "dport", "flags", "seq", "ack", "window", "chksum"})


class _Recorded(object):
    allowed = set()
    positional = []

    def __init__(self, *args, **kwargs):
        if len(args) > len(self.positional):
            raise TypeError("%s: too many positional arguments" % type(self).__name__)
        kwargs = dict(kwargs)
        for name, value in zip(self.positional, args):
            kwargs[name] = value
        for k in kwargs:
            if k not in self.allowed:
                raise TypeError("%s() got an unexpected keyword argument %r" % (type(self).__name__, k))
        self.kwargs = kwargs
        self.check()

    def check(self):
        pass


class CTRexVmInsFixHwCs(object):
    L4_TYPE_UDP = 11
    L4_TYPE_TCP = 13
    L4_TYPE_IP = 17


class STLVmFlowVar(_Recorded):
    positional = ["name", "min_value", "max_value", "size", "op", "step"]
    allowed = set(positional) | {"init_value", "value_list", "split_to_cores", "next_var"}

    def check(self):
        k = self.kwargs
        size = k.get("size", 4)
        if size not in (1, 2, 4, 8):
            raise ValueError("flow var size %r" % size)
        if k.get("op", "inc") not in ("inc", "dec", "random"):
            raise ValueError("flow var op %r" % k.get("op"))
        lo, hi = k.get("min_value", 0), k.get("max_value", 0)
        if not (isinstance(lo, int) and isinstance(hi, int)) or lo < 0 or lo > hi or hi >= 1 << (8 * size):
            raise ValueError("flow var range %r-%r for size %d" % (lo, hi, size))


class STLVmWrFlowVar(_Recorded):
    positional = ["fv_name", "pkt_offset", "offset_fixup", "add_val", "is_big"]
    allowed = set(positional)


class STLVmWrMaskFlowVar(_Recorded):
    positional = ["fv_name", "pkt_offset", "pkt_cast_size", "mask", "shift", "add_value",
                  "offset_fixup", "is_big"]
    allowed = set(positional)

    def check(self):
        if self.kwargs.get("pkt_cast_size", 1) not in (1, 2, 4):
            raise ValueError("pkt_cast_size %r" % self.kwargs.get("pkt_cast_size"))


class STLFlowLatencyStats(_Recorded):
    positional = ["pg_id"]
    allowed = set(positional)


class STLVmFixIpv4(_Recorded):
    positional = ["offset"]
    allowed = set(positional)


class STLVmFixChecksumHw(_Recorded):
    positional = ["l3_offset", "l4_offset", "l4_type"]
    allowed = set(positional)


class STLScVmRaw(_Recorded):
    positional = ["list_of_commands", "cache_size"]
    allowed = set(positional)


class STLPktBuilder(_Recorded):
    positional = ["pkt", "pkt_buffer", "vm", "path_relative_to_profile"]
    allowed = set(positional)


class STLTXCont(_Recorded):
    positional = ["bps_L1", "bps_L2", "pps", "percentage"]
    allowed = set(positional)


class STLTXSingleBurst(_Recorded):
    positional = ["bps_L1", "bps_L2", "pps", "percentage", "total_pkts"]
    allowed = set(positional)


class STLStream(_Recorded):
    allowed = {"name", "packet", "mode", "enabled", "self_start", "isg", "flow_stats",
               "next", "stream_id", "action_count", "random_seed", "mac_src_override_by_pkt",
               "mac_dst_override_mode", "dummy_stream", "start_paused", "core_id"}
`

// trexStubDriver loads a profile, calls get_streams and prints the record.
// Usage: driver.py PROFILE DIRECTION [--kwargs] TUNABLE...; with --kwargs the
// tunables are name=value pairs passed as keyword arguments, as old TRex
// versions do. A profile's ValueError exits 3 with its message on stderr.
const trexStubDriver = `
import importlib.util
import json
import sys

from trex_stl_lib import api


def dump_stream(s):
    k = s.kwargs
    pkt = k["packet"].kwargs
    vm = pkt.get("vm")
    if isinstance(vm, api.STLScVmRaw):
        vm = vm.kwargs.get("list_of_commands") or []
    mode = k["mode"]
    return {
        "name": k.get("name"),
        "mode": dict(mode.kwargs, kind=type(mode).__name__),
        "layers": pkt["pkt"].dump(),
        "len": len(pkt["pkt"]),
        "vm": [{"kind": type(i).__name__, "kwargs": i.kwargs} for i in (vm or [])],
    }


spec = importlib.util.spec_from_file_location("profile", sys.argv[1])
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
words = sys.argv[3:]
kwargs = {}
if words[:1] == ["--kwargs"]:
    kwargs = dict(w.split("=", 1) for w in words[1:])
    words = None
try:
    streams = mod.register().get_streams(direction=int(sys.argv[2]), tunables=words, **kwargs)
except ValueError as e:
    print(e, file=sys.stderr)
    sys.exit(3)
json.dump([dump_stream(s) for s in streams], sys.stdout)
`
