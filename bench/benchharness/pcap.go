package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// This file writes and reads classic libpcap files (microsecond
// timestamps, Ethernet link type), the format net_pcap's rx_pcap reads.

// Classic pcap constants.
const (
	pcapMagic      = 0xa1b2c3d4
	pcapVersionMaj = 2
	pcapVersionMin = 4
	pcapSnapLen    = 65535
	pcapLinkEther  = 1
	pcapHeaderLen  = 24
	pcapRecordLen  = 16
)

// errPcapFormat is wrapped by ReadPcap for a file that is not a classic
// little-endian Ethernet pcap.
var errPcapFormat = errors.New("not a classic little-endian Ethernet pcap file")

// pcapWriter writes frames to a classic pcap file.
type pcapWriter struct {
	w   *bufio.Writer
	n   int
	hdr [pcapRecordLen]byte
}

// newPcapWriter writes the file header to w and returns a writer of
// records.
func newPcapWriter(w io.Writer) (*pcapWriter, error) {
	var h [pcapHeaderLen]byte
	binary.LittleEndian.PutUint32(h[0:], pcapMagic)
	binary.LittleEndian.PutUint16(h[4:], pcapVersionMaj)
	binary.LittleEndian.PutUint16(h[6:], pcapVersionMin)
	binary.LittleEndian.PutUint32(h[16:], pcapSnapLen)
	binary.LittleEndian.PutUint32(h[20:], pcapLinkEther)
	bw := bufio.NewWriterSize(w, 1<<20)
	if _, err := bw.Write(h[:]); err != nil {
		return nil, err
	}
	return &pcapWriter{w: bw}, nil
}

// Write appends one frame; its timestamp is the record number in
// microseconds.
func (pw *pcapWriter) Write(frame []byte) error {
	if len(frame) > pcapSnapLen {
		return fmt.Errorf("pcap: frame of %d bytes is longer than the snap length %d", len(frame), pcapSnapLen)
	}
	binary.LittleEndian.PutUint32(pw.hdr[0:], uint32(pw.n/1_000_000))
	binary.LittleEndian.PutUint32(pw.hdr[4:], uint32(pw.n%1_000_000))
	binary.LittleEndian.PutUint32(pw.hdr[8:], uint32(len(frame)))
	binary.LittleEndian.PutUint32(pw.hdr[12:], uint32(len(frame)))
	if _, err := pw.w.Write(pw.hdr[:]); err != nil {
		return err
	}
	_, err := pw.w.Write(frame)
	pw.n++
	return err
}

// Flush writes buffered records to the underlying writer.
func (pw *pcapWriter) Flush() error { return pw.w.Flush() }

// writePcapFile writes frames to path atomically: to a temporary file in
// the same directory, renamed over path once complete. A reader that
// opened the old file keeps reading the old content.
func writePcapFile(path string, frames func(yield func([]byte) bool)) (int, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	pw, err := newPcapWriter(tmp)
	if err != nil {
		tmp.Close()
		return 0, err
	}
	var werr error
	for f := range frames {
		if werr = pw.Write(f); werr != nil {
			break
		}
	}
	if werr == nil {
		werr = pw.Flush()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return 0, fmt.Errorf("writing %s: %w", path, werr)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return 0, err
	}
	return pw.n, nil
}

// readPcap calls fn for every frame of a classic pcap stream, until fn
// returns false. The frame slice is reused between calls.
func readPcap(r io.Reader, fn func(frame []byte) bool) error {
	br := bufio.NewReaderSize(r, 1<<20)
	var h [pcapHeaderLen]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return fmt.Errorf("pcap header: %w", err)
	}
	if binary.LittleEndian.Uint32(h[0:]) != pcapMagic || binary.LittleEndian.Uint32(h[20:]) != pcapLinkEther {
		return errPcapFormat
	}
	buf := make([]byte, pcapSnapLen)
	var rec [pcapRecordLen]byte
	for {
		if _, err := io.ReadFull(br, rec[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("pcap record header: %w", err)
		}
		n := binary.LittleEndian.Uint32(rec[8:])
		if n > pcapSnapLen {
			return fmt.Errorf("pcap record of %d bytes: %w", n, errPcapFormat)
		}
		if _, err := io.ReadFull(br, buf[:n]); err != nil {
			return fmt.Errorf("pcap record: %w", err)
		}
		if !fn(buf[:n]) {
			return nil
		}
	}
}
