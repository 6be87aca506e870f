package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// This file runs dpdk-testpmd --forward-mode=macswap on the same virtual
// devices as natgw's run (a net_pcap infinite_rx source into a net_null
// sink, one forwarding core) and reads its throughput from the port
// statistics it prints every second (--stats-period 1).

// testpmdResult is one testpmd measurement.
type testpmdResult struct {
	Pcap    string    `json:"pcap"`
	Frames  int       `json:"frames"`
	Mpps    float64   `json:"mpps"`
	Samples []float64 `json:"samples_mpps"`
	Command []string  `json:"command"`
	// Warmup and Duration are the seconds skipped and measured.
	Warmup   int `json:"warmup_s"`
	Duration int `json:"duration_s"`
}

// testpmdOptions describe a testpmd run.
type testpmdOptions struct {
	Binary   string
	Pcap     string
	Spare    string // a one-frame pcap for the second RX queue (see natgwVdevs)
	Frames   int    // frames in Pcap (sizes the mempool)
	Lcores   string // EAL -l: main lcore, then the forwarding lcore
	Burst    int
	Warmup   int
	Duration int
}

// testpmdArgs returns testpmd's command line: the same vdevs as natgw's
// run (two rx_pcap so the device has the two TX queues natgw needs; only
// the first RX queue is used), one forwarding core, macswap.
func testpmdArgs(o testpmdOptions) []string {
	mbufs := max(8191, o.Frames+16384)
	return []string{
		"-l", o.Lcores, "--in-memory", "--file-prefix", testpmdPrefix(), "--no-pci",
		"--vdev=" + pcapVdev("net_pcap0", o.Pcap, o.Spare),
		"--vdev=net_null0,no-rx=1",
		"--",
		"--forward-mode=macswap", "--nb-cores=1", "--rxq=1", "--txq=2",
		"--burst=" + strconv.Itoa(o.Burst), "--total-num-mbufs=" + strconv.Itoa(mbufs),
		"--stats-period=1", "--no-lsc-interrupt",
	}
}

// testpmdPrefix is testpmd's EAL file prefix: EAL leaves a runtime
// directory of that name under /var/run/dpdk, which runTestpmd removes.
func testpmdPrefix() string { return fmt.Sprintf("natgw-bench-testpmd-%d", os.Getpid()) }

// pcapVdev returns a net_pcap vdev argument replaying file forever.
func pcapVdev(name, file, spare string) string {
	return fmt.Sprintf("%s,rx_pcap=%s,rx_pcap=%s,infinite_rx=1", name, file, spare)
}

// runTestpmd runs testpmd for warmup+duration seconds, stops it with
// SIGINT and returns the mean forwarding rate of the measured seconds.
func runTestpmd(ctx context.Context, o testpmdOptions, log io.Writer) (testpmdResult, error) {
	args := testpmdArgs(o)
	res := testpmdResult{Pcap: o.Pcap, Frames: o.Frames, Command: append([]string{o.Binary}, args...),
		Warmup: o.Warmup, Duration: o.Duration}
	defer os.RemoveAll(filepath.Join("/var/run/dpdk", testpmdPrefix()))
	cmd := exec.CommandContext(ctx, o.Binary, args...)
	var out bytes.Buffer
	cmd.Stdout = io.MultiWriter(&out, log)
	cmd.Stderr = log
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGKILL) }
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("starting %s: %w", o.Binary, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// testpmd prints its first statistics one period after forwarding
	// starts; loading a large pcap takes a while before that, so the run
	// lasts until enough samples were printed (or a generous limit).
	want := o.Warmup + o.Duration + 1
	deadline := time.Now().Add(time.Duration(want)*time.Second + 3*time.Minute)
	var err error
wait:
	for {
		select {
		case err = <-done:
			break wait
		case <-time.After(200 * time.Millisecond):
		}
		if countSamples(out.Bytes()) >= want || time.Now().After(deadline) {
			_ = cmd.Process.Signal(syscall.SIGINT)
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				err = <-done
			}
			break
		}
	}
	samples, perr := parseTestpmdStats(bytes.NewReader(out.Bytes()))
	if perr != nil {
		return res, errors.Join(perr, err)
	}
	// The first sample covers the start of forwarding; then warmup.
	if len(samples) < 1+o.Warmup+o.Duration {
		return res, fmt.Errorf("testpmd printed %d statistics samples, want %d (exit: %v)", len(samples), 1+o.Warmup+o.Duration, err)
	}
	res.Samples = samples[1+o.Warmup : 1+o.Warmup+o.Duration]
	res.Mpps = mean(res.Samples)
	return res, nil
}

// countSamples counts the statistics blocks testpmd has printed.
func countSamples(out []byte) int {
	return bytes.Count(out, []byte("Port statistics ===="))
}

// parseTestpmdStats reads testpmd's periodic port statistics and returns
// one forwarding rate per period, in Mpps: the sum over ports of "Tx-pps"
// (the sink is the only port transmitting). A block that lacks a port's
// Tx-pps line is an error.
func parseTestpmdStats(r io.Reader) ([]float64, error) {
	var samples []float64
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	in := false
	var sum float64
	ports, rates := 0, 0
	closeBlock := func() error {
		if !in {
			return nil
		}
		if ports == 0 || rates != ports {
			return fmt.Errorf("testpmd statistics block %d: %d ports, %d Tx-pps lines", len(samples)+1, ports, rates)
		}
		samples = append(samples, sum/1e6)
		return nil
	}
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.Contains(line, "Port statistics ===="):
			if err := closeBlock(); err != nil {
				return nil, err
			}
			in, sum, ports, rates = true, 0, 0, 0
		case !in:
		case strings.Contains(line, "NIC statistics for port"):
			ports++
		case strings.Contains(line, "Tx-pps:"):
			v, err := fieldAfter(line, "Tx-pps:")
			if err != nil {
				return nil, fmt.Errorf("testpmd statistics: %q: %w", line, err)
			}
			sum += v
			rates++
		case strings.Contains(line, "Forward statistics") || strings.Contains(line, "Stopping port"):
			// The summary printed on exit is not a periodic sample.
			if err := closeBlock(); err != nil {
				return nil, err
			}
			in = false
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if in && ports > 0 && rates == ports {
		samples = append(samples, sum/1e6)
	}
	return samples, nil
}

// fieldAfter parses the number that follows key in line.
func fieldAfter(line, key string) (float64, error) {
	i := strings.Index(line, key)
	if i < 0 {
		return 0, fmt.Errorf("no %q", key)
	}
	f := strings.Fields(line[i+len(key):])
	if len(f) == 0 {
		return 0, fmt.Errorf("no value after %q", key)
	}
	return strconv.ParseFloat(f[0], 64)
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// cmdTestpmd is the "testpmd" subcommand.
func cmdTestpmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("testpmd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := testpmdOptions{}
	fs.StringVar(&o.Binary, "testpmd", "/usr/bin/dpdk-testpmd", "dpdk-testpmd binary")
	fs.StringVar(&o.Pcap, "pcap", "", "pcap file to replay (from the natgw subcommand)")
	fs.StringVar(&o.Spare, "spare", "", "one-frame pcap for the second RX queue (default: next to -pcap)")
	fs.StringVar(&o.Lcores, "l", "0,1", "EAL lcores: main, then the forwarding core")
	fs.IntVar(&o.Burst, "burst", 32, "frames per burst")
	fs.IntVar(&o.Warmup, "warmup", 2, "seconds skipped before measuring")
	fs.IntVar(&o.Duration, "duration", 10, "seconds measured")
	outPath := fs.String("o", "", "write the result as JSON to this file")
	logPath := fs.String("log", "", "write testpmd's output to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.Pcap == "" || *outPath == "" || fs.NArg() != 0 {
		return errors.New("usage: benchharness testpmd -pcap FILE -o RESULT.json [-duration S] [-warmup S]")
	}
	if o.Spare == "" {
		o.Spare = spareName(o.Pcap)
	}
	n, err := countPcap(o.Pcap)
	if err != nil {
		return err
	}
	o.Frames = n
	log := io.Discard
	if *logPath != "" {
		f, err := os.Create(*logPath)
		if err != nil {
			return err
		}
		defer f.Close()
		log = f
	}
	res, err := runTestpmd(context.Background(), o, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "testpmd macswap %s (%d frames): %.2f Mpps\n", o.Pcap, n, res.Mpps)
	return writeJSON(*outPath, res)
}

// countPcap returns the number of frames in a pcap file.
func countPcap(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n := 0
	err = readPcap(f, func([]byte) bool { n++; return true })
	return n, err
}
