package nat

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOutboundICMPErrorsFollowTheirFlow checks that an ICMP error from the
// inside is translated only when it goes back to the remote of the live
// flow it quotes, and that deny rules apply to it like to any packet
// (issue 14 item 5). Before, a host could quote a packet of one of its
// flows and send the error, with its public source, to any destination,
// a denied one included.
func TestOutboundICMPErrorsFollowTheirFlow(t *testing.T) {
	s := testSpec(0)
	s.Deny = append(s.Deny, DenyRule{Destination: Prefix{Addr: ip4("198.18.98.0"), Bits: 24},
		PortRule: PortRule{Proto: ProtoICMP, Lo: 0, Hi: 0xFFFF}})
	p := compileSpec(t, s, nil)
	denied := ip4("198.18.99.1")    // tcp/25 denied, but no ICMP rule
	noICMP := ip4("198.18.98.5")    // ICMP denied, UDP allowed
	elsewhere := ip4("203.0.113.9") // no flow of the host
	// portUnreach is the host's port unreachable about a datagram from
	// remote to the host's public endpoint, sent to dst.
	portUnreach := func(t *testing.T, tr *Translator, priv, remote, dst uint32) []byte {
		t.Helper()
		out := udp(priv, remote, 41000, 53).build(t)
		require.Equal(t, VerdictForward, tr.Outbound(out, 1000), "the flow")
		o := parsed(t, out)
		reply := udp(remote, o.ip.Src(), 53, o.sport).build(t)
		require.Equal(t, VerdictForward, tr.Inbound(reply, 1000), "the reply")
		delivered, _ := ParseIPv4(reply)
		eb := make([]byte, 1024)
		n := BuildICMPError(eb, priv, dst, ICMPDestUnreachable, 3, 0, delivered, 64)
		require.NotZero(t, n)
		return eb[:n]
	}
	tests := []struct {
		name         string
		priv, remote uint32
		dst          uint32
		want         Verdict
	}{
		{"to the quoted remote", memberA, server, server, VerdictForward},
		{"instance, to the quoted remote", instPriv, server, server, VerdictForward},
		{"to another destination", memberA, server, elsewhere, DropNoFlow},
		{"to a tcp-denied destination (no ICMP rule)", memberA, server, denied, DropNoFlow},
		{"instance, to another destination", instPriv, server, server2, DropNoFlow},
		{"to the quoted remote, ICMP denied there", memberA, noICMP, noICMP, DropDenied},
		{"default SNAT, to the quoted remote, ICMP denied there", dflt, noICMP, noICMP, DropDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTestTranslator(t, p, 1024)
			eb := portUnreach(t, tr, tt.priv, tt.remote, tt.dst)
			before := tr.Stats.Verdicts[tt.want]
			assert.Equal(t, tt.want, tr.Outbound(eb, 1001))
			assert.Equal(t, before+1, tr.Stats.Verdicts[tt.want], "counted")
		})
	}
	t.Run("quoting no live flow", func(t *testing.T) {
		tr := newTestTranslator(t, p, 1024)
		ghost := udp(server, memberA, 53, 4444).build(t) // as delivered: to the private host
		gip, _ := ParseIPv4(ghost)
		eb := make([]byte, 1024)
		n := BuildICMPError(eb, memberA, server, ICMPDestUnreachable, 3, 0, gip, 64)
		assert.Equal(t, DropNoFlow, tr.Outbound(eb[:n], 1000))
	})
}
