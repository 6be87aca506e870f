package nat

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// randomDatagram builds an IPv4 packet with an options area of opts
// (padded with end-of-options to a multiple of 4) and size bytes of
// payload; fragOff and mf make it a fragment already.
func randomDatagram(r *rand.Rand, opts []byte, size, fragOff int, mf bool) IPv4 {
	hl := IPv4MinLen + (len(opts)+3)&^3
	b := make([]byte, hl+size)
	WriteIPv4(b, IPv4Fields{TotalLen: uint16(hl + size), ID: uint16(r.Uint32()), TTL: 63, Protocol: ProtoUDP,
		Src: r.Uint32(), Dst: r.Uint32(), TOS: uint8(r.Uint32())})
	copy(b[IPv4MinLen:], opts)
	b[0] = 0x40 | byte(hl>>2)
	frag := uint16(fragOff >> 3)
	if mf {
		frag |= ipv4FlagMF
	}
	binary.BigEndian.PutUint16(b[ipv4FragOff:], frag)
	for i := hl; i < len(b); i++ {
		b[i] = byte(r.Uint32())
	}
	ip := IPv4(b)
	ip.SetChecksum(0)
	ip.SetChecksum(ip.ComputeChecksum())
	return ip
}

// Some options: record route (copy flag clear), security (copied, 11
// bytes), loose source route (copied, odd length), no-operations, a
// timestamp (not copied).
var (
	optRecordRoute = []byte{7, 7, 4, 0, 0, 0, 0}
	optSecurity    = []byte{0x82, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	optLooseRoute  = []byte{0x83, 7, 4, 10, 0, 0, 1}
	optTimestamp   = []byte{68, 8, 5, 0, 0, 0, 0, 0}
)

// checkFragments reassembles frags and compares them with ip: every
// fragment at most mtu bytes, a valid header checksum, the header fields
// of ip, the options of the first fragment all of ip's and of later ones
// only the copied ones, 8-byte aligned data except the last, MF on all
// but the last (which keeps ip's), and the data in order equal to ip's.
func checkFragments(t *testing.T, ip IPv4, mtu int, frags [][]byte, copied []byte) {
	t.Helper()
	var data []byte
	for i, f := range frags {
		fr, ok := ParseIPv4(f)
		require.True(t, ok, "fragment %d parses (checksum valid)", i)
		require.LessOrEqual(t, len(fr), mtu, "fragment %d size", i)
		assert.Equal(t, ip.ID(), fr.ID())
		assert.Equal(t, ip.TOS(), fr.TOS())
		assert.Equal(t, ip.TTL(), fr.TTL())
		assert.Equal(t, ip.Src(), fr.Src())
		assert.Equal(t, ip.Dst(), fr.Dst())
		assert.Equal(t, ip.Protocol(), fr.Protocol())
		assert.Equal(t, ip.DF(), fr.DF())
		require.Equal(t, ip.FragOffset()+len(data), fr.FragOffset(), "fragment %d offset", i)
		if i == 0 {
			assert.Equal(t, []byte(ip[:ip.HeaderLen()])[IPv4MinLen:], []byte(fr[IPv4MinLen:fr.HeaderLen()]), "first fragment options")
		} else {
			want := make([]byte, (len(copied)+3)&^3)
			copy(want, copied)
			assert.Equal(t, want, []byte(fr[IPv4MinLen:fr.HeaderLen()]), "fragment %d options", i)
		}
		last := i == len(frags)-1
		if last {
			assert.Equal(t, ip.MF(), fr.MF(), "the last fragment keeps the packet's MF")
		} else {
			assert.True(t, fr.MF(), "fragment %d MF", i)
			assert.Zero(t, len(fr.Payload())%8, "fragment %d data length %d", i, len(fr.Payload()))
		}
		data = append(data, fr.Payload()...)
	}
	require.True(t, bytes.Equal([]byte(ip.Payload()), data), "reassembled data differs")
}

// fragmentAll cuts ip with WriteFragment, the first fragment last and in
// place in a copy of ip, like the worker does.
func fragmentAll(t *testing.T, ip IPv4, mtu int) [][]byte {
	t.Helper()
	count := FragmentCount(ip, mtu)
	require.NotZero(t, count)
	var later [][]byte
	first, _ := WriteFragment(make([]byte, 0), ip, 0, mtu) // too short: nothing written
	require.Zero(t, first)
	_, off := WriteFragment(make([]byte, mtu), append(IPv4(nil), ip...), 0, mtu)
	for off < len(ip.Payload()) {
		b := make([]byte, mtu)
		n, next := WriteFragment(b, ip, off, mtu)
		require.NotZero(t, n, "fragment at %d", off)
		later = append(later, b[:n])
		off = next
	}
	whole := append(IPv4(nil), ip...)
	n, _ := WriteFragment(whole, whole, 0, mtu)
	require.NotZero(t, n)
	frags := append([][]byte{whole[:n]}, later...)
	require.Len(t, frags, count, "FragmentCount")
	return frags
}

func TestWriteFragmentRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 4787))
	optSets := []struct {
		opts, copied []byte
	}{
		{nil, nil},
		{optRecordRoute, nil},
		{optSecurity, optSecurity},
		{append(append([]byte{1, 1}, optLooseRoute...), optTimestamp...), optLooseRoute},
		{append(append(append([]byte(nil), optTimestamp...), optSecurity...), optLooseRoute...), append(append([]byte(nil), optSecurity...), optLooseRoute...)},
		{append(append([]byte(nil), optSecurity...), 0, 0x83, 3, 0), optSecurity}, // after end of options: ignored
	}
	for i := range 3000 {
		o := optSets[r.IntN(len(optSets))]
		size := 1 + r.IntN(9000)
		hl := IPv4MinLen + (len(o.opts)+3)&^3
		mtu := 68 + r.IntN(1500)
		if i%3 == 0 {
			mtu = 576 + r.IntN(9000)
		}
		fragOff, mf := 0, false
		if i%5 == 0 {
			fragOff, mf = 8*r.IntN(100), r.IntN(2) == 0
		}
		ip := randomDatagram(r, o.opts, size, fragOff, mf)
		if hl+size <= mtu {
			assert.Equal(t, 1, FragmentCount(ip, mtu))
			continue
		}
		frags := fragmentAll(t, ip, mtu)
		checkFragments(t, ip, mtu, frags, o.copied)
		if t.Failed() {
			t.Fatalf("case %d: size %d mtu %d options %x", i, size, mtu, o.opts)
		}
	}
}

func TestWriteFragmentRefuses(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	t.Run("malformed options", func(t *testing.T) {
		for _, opts := range [][]byte{{0x83, 1, 0, 0}, {0x83, 9, 0, 0}, {7}, {1, 1, 1, 0x82}} {
			ip := randomDatagram(r, opts, 3000, 0, false)
			assert.Zero(t, FragmentCount(ip, 1500), "options %x", opts)
			n, _ := WriteFragment(make([]byte, 1500), ip, 0, 1500)
			assert.Zero(t, n, "options %x", opts)
		}
	})
	t.Run("MTU too small for the header", func(t *testing.T) {
		ip := randomDatagram(r, append(append([]byte(nil), optSecurity...), optLooseRoute...), 3000, 0, false)
		assert.Zero(t, FragmentCount(ip, 40))
		n, _ := WriteFragment(make([]byte, 1500), ip, 0, 40)
		assert.Zero(t, n)
	})
	t.Run("offsets past the field", func(t *testing.T) {
		ip := randomDatagram(r, nil, 3000, 8*0x1f00, true)
		assert.Zero(t, FragmentCount(ip, 1500))
	})
	t.Run("the smallest MTU carries 8 bytes per fragment", func(t *testing.T) {
		opts := make([]byte, 40)
		for i := 0; i < 40; i += 4 {
			copy(opts[i:], []byte{0x82, 4, 0, 0})
		}
		ip := randomDatagram(r, opts, 100, 0, false)
		frags := fragmentAll(t, ip, 68)
		checkFragments(t, ip, 68, frags, opts)
	})
}

func TestWriteFragmentAllocs(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	ip := randomDatagram(r, append(append([]byte(nil), optSecurity...), optTimestamp...), 4000, 0, false)
	buf := make([]byte, 1500)
	whole := append(IPv4(nil), ip...)
	allocs := testing.AllocsPerRun(100, func() {
		copy(whole, ip)
		for _, off := WriteFragment(whole, whole, 0, 1500); off < len(ip.Payload()); {
			_, off = WriteFragment(buf, ip, off, 1500)
		}
		_ = FragmentCount(ip, 1500)
	})
	assert.Zero(t, allocs)
}
