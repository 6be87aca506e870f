package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPcapRoundTrip(t *testing.T) {
	tests := []struct {
		name   string
		frames [][]byte
	}{
		{"empty", nil},
		{"one", [][]byte{bytes.Repeat([]byte{0xab}, frameLen)}},
		{"sizes", [][]byte{{1}, bytes.Repeat([]byte{2}, 60), bytes.Repeat([]byte{3}, 1514), bytes.Repeat([]byte{4}, 9000)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.pcap")
			n, err := writePcapFile(path, func(yield func([]byte) bool) {
				for _, f := range tt.frames {
					if !yield(f) {
						return
					}
				}
			})
			require.NoError(t, err)
			assert.Equal(t, len(tt.frames), n)
			f, err := os.Open(path)
			require.NoError(t, err)
			defer f.Close()
			var got [][]byte
			require.NoError(t, readPcap(f, func(b []byte) bool { got = append(got, bytes.Clone(b)); return true }))
			assert.Equal(t, tt.frames, got)
			c, err := countPcap(path)
			require.NoError(t, err)
			assert.Equal(t, len(tt.frames), c)
		})
	}
}

// TestPcapReplaceKeepsOpenReaders checks what writeTrafficPcaps relies on:
// writePcapFile replaces the file by rename, so a reader that opened the
// old file (net_pcap at probe time) still reads the old frames, and a new
// open sees the new ones.
func TestPcapReplaceKeepsOpenReaders(t *testing.T) {
	path := filepath.Join(t.TempDir(), "in.pcap")
	write := func(b byte) {
		_, err := writePcapFile(path, func(yield func([]byte) bool) { yield([]byte{b, b, b}) })
		require.NoError(t, err)
	}
	write(1)
	old, err := os.Open(path)
	require.NoError(t, err)
	defer old.Close()
	write(2)
	first := func(f *os.File) byte {
		var b byte
		require.NoError(t, readPcap(f, func(fr []byte) bool { b = fr[0]; return false }))
		return b
	}
	assert.Equal(t, byte(1), first(old))
	cur, err := os.Open(path)
	require.NoError(t, err)
	defer cur.Close()
	assert.Equal(t, byte(2), first(cur))
	matches, err := filepath.Glob(path + ".tmp*")
	require.NoError(t, err)
	assert.Empty(t, matches, "temporary files left behind")
}

func TestReadPcapRejectsBadInput(t *testing.T) {
	var good bytes.Buffer
	pw, err := newPcapWriter(&good)
	require.NoError(t, err)
	require.NoError(t, pw.Write([]byte{1, 2, 3, 4}))
	require.NoError(t, pw.Flush())
	bigRecord := bytes.Clone(good.Bytes()[:pcapHeaderLen+pcapRecordLen])
	binary.LittleEndian.PutUint32(bigRecord[pcapHeaderLen+8:], pcapSnapLen+1)
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"short header", good.Bytes()[:10]},
		{"bad magic", append([]byte{0, 0, 0, 0}, good.Bytes()[4:]...)},
		{"truncated record", good.Bytes()[:good.Len()-1]},
		{"truncated record header", good.Bytes()[:pcapHeaderLen+3]},
		{"record longer than the snap length", bigRecord},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := readPcap(bytes.NewReader(tt.data), func([]byte) bool { return true })
			assert.Error(t, err)
		})
	}
}

func TestPcapWriterRejectsOversizeFrame(t *testing.T) {
	pw, err := newPcapWriter(&bytes.Buffer{})
	require.NoError(t, err)
	assert.Error(t, pw.Write(make([]byte, pcapSnapLen+1)))
}
