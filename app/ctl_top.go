package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/natgw/natgw/mgmt"
)

// This file is "natgw ctl top": the hotspots of GET /v1/hotspots (issue
// 18), refreshed in place like top(1) for an operator watching an
// incident, or printed once (--once, or --json for scripts).

// ansiClearHome moves the cursor home and clears the screen.
const ansiClearHome = "\x1b[H\x1b[2J"

func (c *ctlClient) top(args []string) int {
	limit := mgmt.DefaultHotspotsLimit
	interval := 2 * time.Second
	once := false
	if _, ok := c.subFlags("top", args, 0, func(fs *flag.FlagSet) {
		fs.IntVar(&limit, "limit", limit, "at most this many pairs")
		fs.DurationVar(&interval, "interval", interval, "refresh interval")
		fs.BoolVar(&once, "once", false, "print once and exit (--json implies it)")
	}); !ok {
		return exitUsage
	}
	if interval <= 0 {
		fmt.Fprintf(c.stderr, "natgw ctl top: --interval %s: must be positive\n", interval)
		return exitUsage
	}
	path := "/v1/hotspots?limit=" + strconv.Itoa(limit)
	if c.json || once {
		var resp mgmt.HotspotsResponse
		return c.run(http.MethodGet, path, &resp, func(w io.Writer) { showHotspots(w, &resp) })
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return c.topLoop(ctx, path, interval, 0)
}

// topLoop redraws the hotspots every interval until ctx is done (or,
// when rounds > 0, after that many screens). An unreachable appliance or
// an error answer is shown in place and retried.
func (c *ctlClient) topLoop(ctx context.Context, path string, interval time.Duration, rounds int) int {
	var token string
	if c.tokenFile != "" {
		var err error
		if token, err = mgmt.ReadToken(c.tokenFile); err != nil {
			fmt.Fprintf(c.stderr, "natgw ctl: --token-file: %v\n", err)
			return exitUsage
		}
	}
	for n := 1; ; n++ {
		var screen bytes.Buffer
		screen.WriteString(ansiClearHome)
		fmt.Fprintf(&screen, "natgw top  %s  every %s  %s  (Ctrl-C to quit)\n\n", c.base, interval, time.Now().Format(time.TimeOnly))
		body, err := c.call(http.MethodGet, path, token)
		var resp mgmt.HotspotsResponse
		if err == nil {
			err = json.Unmarshal(body, &resp)
		}
		if err != nil {
			fmt.Fprintf(&screen, "error: %v\n", err)
		} else {
			tw := tabwriter.NewWriter(&screen, 0, 4, 2, ' ', 0)
			showHotspots(tw, &resp)
			tw.Flush()
		}
		c.stdout.Write(screen.Bytes())
		if rounds > 0 && n >= rounds {
			return exitOK
		}
		select {
		case <-ctx.Done():
			return exitOK
		case <-time.After(interval):
		}
	}
}

// showHotspots prints the hotspots as a table.
func showHotspots(w io.Writer, resp *mgmt.HotspotsResponse) {
	fmt.Fprintf(w, "PRIVATE\tDESTINATION\tPROTO\tPOOL\tSCOPE\tIN USE/BLOCK\tUTIL\tGROWTH/S\tETA\n")
	for _, h := range resp.Hotspots {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d/%d\t%.1f%%\t%+.2f\t%s\n", h.Private, h.Destination, h.Protocol,
			h.Pool, h.Scope, h.PortsInUse, h.Block, h.Utilization*100, h.GrowthPerSecond, formatETA(h.ETASeconds))
	}
	fmt.Fprintf(w, "(%d pairs; growth over the last %.0f s; ETA only for growing pairs)\n", len(resp.Hotspots), resp.WindowSeconds)
}

// formatETA renders a time to exhaustion: "-" for none, "exhausted" at
// zero, else a duration to the second.
func formatETA(eta *float64) string {
	switch {
	case eta == nil:
		return "-"
	case *eta <= 0:
		return "exhausted"
	case *eta > 100*24*3600:
		return ">100d"
	}
	return (time.Duration(*eta * float64(time.Second))).Round(time.Second).String()
}
