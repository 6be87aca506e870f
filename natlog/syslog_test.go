package natlog

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSyslogMessages(t *testing.T) {
	h := SyslogHeader{Hostname: "gw1", AppName: "natgw", ProcID: 4242}
	block := BlockRecord(BlockEvent{Time: t0, Kind: BlockAssigned, Scope: ScopePool, Name: "web",
		Private: 0x0A000104, Public: 0xC6130A0A, First: 1024, Last: 2047, Generation: 3})
	del := Record{Time: t0, Event: EventSessionDelete, Proto: 6, Reason: EndDetected,
		Private: 0x0A000104, PrivatePort: 40000, Public: 0xC6130A0A, PublicPort: 1500,
		Remote: 0xC612000A, RemotePort: 443}
	inst := BlockRecord(BlockEvent{Time: t0, Kind: BlockReleased, Scope: ScopeInstance,
		Private: 0x0A000307, Public: 0xC6130132, First: 0, Last: 0xFFFF, Generation: 2})
	ds := BlockRecord(BlockEvent{Time: t0, Kind: BlockReleased, Scope: ScopeDefaultSNAT,
		Private: 0x0A000707, Public: 0xC6130114, First: 1024, Last: 2047, Generation: 1})
	exh := Record{Time: t0, Event: EventPortsExhausted, Proto: 17, Private: 0x0A000104, Public: 0xC6130A0A,
		Remote: 0xC612000A, RemotePort: 53, Pool: `a"b]c\`}
	quota := Record{Time: t0, Event: EventQuotaExceeded, MaxEntries: 500000}
	for _, tc := range []struct {
		r    Record
		h    SyslogHeader
		want string
	}{
		{block, h, `<134>1 2026-12-05T23:59:00.123Z gw1 natgw 4242 NAT_BLOCK [nat@32473 event="block_allocate" private="10.0.1.4" public="198.19.10.10" first="1024" last="2047" pool="web" gen="3"]`},
		{del, h, `<134>1 2026-12-05T23:59:00.123Z gw1 natgw 4242 NAT_SESSION [nat@32473 event="session_delete" proto="tcp" private="10.0.1.4" privatePort="40000" public="198.19.10.10" publicPort="1500" remote="198.18.0.10" remotePort="443" reason="closed"]`},
		{inst, h, `<134>1 2026-12-05T23:59:00.123Z gw1 natgw 4242 NAT_BINDING [nat@32473 event="binding_delete" private="10.0.3.7" public="198.19.1.50" gen="2"]`},
		{ds, h, `<134>1 2026-12-05T23:59:00.123Z gw1 natgw 4242 NAT_BLOCK [nat@32473 event="block_release" private="10.0.7.7" public="198.19.1.20" first="1024" last="2047" pool="default_snat" gen="1"]`},
		{exh, SyslogHeader{}, `<134>1 2026-12-05T23:59:00.123Z - - - NAT_EXHAUSTED [nat@32473 event="ports_exhausted" proto="udp" private="10.0.1.4" public="198.19.10.10" remote="198.18.0.10" remotePort="53" pool="a\"b\]c\\"]`},
		{quota, SyslogHeader{Hostname: "a b\x01c", AppName: "natgw"}, `<134>1 2026-12-05T23:59:00.123Z abc natgw - NAT_EXHAUSTED [nat@32473 event="flow_table_full" maxEntries="500000"]`},
	} {
		t.Run(tc.r.Event.Name(), func(t *testing.T) {
			assert.Equal(t, tc.want, string(AppendSyslog(nil, tc.h, &tc.r)))
		})
	}
}

func TestOctetCounting(t *testing.T) {
	assert.Equal(t, "10 <134>1 - x", string(AppendOctetCounted(nil, []byte("<134>1 - x"))))
	assert.Equal(t, "pre3 abc", string(AppendOctetCounted([]byte("pre"), []byte("abc"))))
}
