package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/natgw/natgw/bgp"
	"github.com/natgw/natgw/mgmt"
)

// This file is "natgw ctl", the operator's thin client of the management
// API (SPEC §4, §6): it sends one request and prints the answer as a
// table, or as the API's JSON with --json.

// defaultMgmtURL is where ctl finds the appliance without --mgmt (the
// default mgmt.listen).
const defaultMgmtURL = "http://127.0.0.1:9650"

// ctlUsage is ctl's synopsis.
const ctlUsage = `usage: natgw ctl [--mgmt URL] [--json] [--timeout D] [--token-file F] COMMAND
commands:
  status                                 ports, workers and configuration
  mapping IP                             scenario, public address and ports of a private address
  flows [--private IP] [--limit N]       flows, of one private address or all
  reload [--yes]                         re-read the configuration file; on a terminal, show
                                         its plan (natgw plan) and ask first; --yes, --json, or
                                         stdin not a terminal (scripts): reload at once, as before
  who IP:PORT [--at TIME]                which private address held a public address and port
                                         (at an RFC 3339 time, default now; nat_log.history)
  top [--limit N] [--interval D] [--once] member/destination pairs nearest port exhaustion,
                                         refreshed in place (--json or --once: print once)
  drain                                  move new flows off this node ([bgp]), let its flows end, withdraw, exit
  drain-frontend [--cancel] NAME         set frontend NAME to drain in the running configuration
                                         (no new flows on it, its flows live until they end or
                                         reload.reclaim_deadline); --cancel undoes a run-time drain
--mgmt defaults to $NATGW_MGMT, else ` + defaultMgmtURL + `
--token-file (mgmt.token_file; every /v1/ request needs it when the appliance has one)
  defaults to $NATGW_TOKEN_FILE; it may also follow the command`

// ctlClient is one ctl invocation.
type ctlClient struct {
	base string
	json bool
	// tokenFile holds the bearer token sent with every request.
	tokenFile string
	timeout   time.Duration
	// body, when not nil, is sent with the request (natgw plan).
	body   []byte
	stdout io.Writer
	stderr io.Writer
}

// flags declares the API client's flags on fs (natgw ctl and natgw
// plan): --mgmt, --json, --timeout, --token-file.
func (c *ctlClient) flags(fs *flag.FlagSet) {
	base := os.Getenv("NATGW_MGMT")
	if base == "" {
		base = defaultMgmtURL
	}
	fs.StringVar(&c.base, "mgmt", base, "management API URL")
	fs.BoolVar(&c.json, "json", false, "print the API's JSON")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "request timeout")
	fs.StringVar(&c.tokenFile, "token-file", os.Getenv("NATGW_TOKEN_FILE"), "file holding the bearer token (mgmt.token_file)")
}

// cmdCtl runs "natgw ctl".
func cmdCtl(args []string, stdout, stderr io.Writer) int {
	c := &ctlClient{stdout: stdout, stderr: stderr}
	fs := flag.NewFlagSet("ctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, ctlUsage) }
	c.flags(fs)
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, ctlUsage)
		return exitUsage
	}
	u, err := normalizeURL(c.base)
	if err != nil {
		fmt.Fprintf(stderr, "natgw ctl: --mgmt %q: %v\n", c.base, err)
		return exitUsage
	}
	c.base = u
	sub, rest := fs.Arg(0), fs.Args()[1:]
	switch sub {
	case "status":
		return c.status(rest)
	case "mapping":
		return c.mapping(rest)
	case "flows":
		return c.flows(rest)
	case "reload":
		return c.reload(rest)
	case "who":
		return c.who(rest)
	case "top":
		return c.top(rest)
	case "drain":
		return c.drain(rest)
	case "drain-frontend":
		return c.drainFrontend(rest)
	}
	fmt.Fprintf(stderr, "natgw ctl: unknown command %q\n%s\n", sub, ctlUsage)
	return exitUsage
}

// normalizeURL accepts "host:port" or an http(s) URL and returns the URL
// without a trailing slash.
func normalizeURL(s string) (string, error) {
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("scheme %q: use http or https", u.Scheme)
	}
	if u.Host == "" {
		return "", errors.New("no host")
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// subFlags parses a subcommand's flags (each also takes --json) and
// returns its positional arguments, or false after printing the usage.
func (c *ctlClient) subFlags(name string, args []string, positional int, define func(fs *flag.FlagSet)) ([]string, bool) {
	fs := flag.NewFlagSet("ctl "+name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.BoolVar(&c.json, "json", c.json, "print the API's JSON")
	fs.StringVar(&c.tokenFile, "token-file", c.tokenFile, "file holding the bearer token (mgmt.token_file)")
	if define != nil {
		define(fs)
	}
	if err := fs.Parse(args); err != nil {
		return nil, false
	}
	// Flags may also follow the positional argument ("mapping IP --json").
	pos := fs.Args()
	if len(pos) > positional {
		if err := fs.Parse(pos[positional:]); err != nil {
			return nil, false
		}
		pos = append(pos[:positional:positional], fs.Args()...)
	}
	if len(pos) != positional {
		fmt.Fprintln(c.stderr, ctlUsage)
		return nil, false
	}
	return pos, true
}

// call sends a request and returns the body of a 2xx answer; any other
// answer becomes an error carrying the API's message.
func (c *ctlClient) call(method, path, token string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	var reqBody io.Reader
	if c.body != nil {
		reqBody = bytes.NewReader(c.body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, reqBody)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the appliance at %s (is natgw running? see --mgmt): %w", c.base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the answer of %s: %w", c.base, err)
	}
	if resp.StatusCode/100 != 2 {
		var e mgmt.ErrorResponse
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return body, &apiError{status: resp.StatusCode, resp: e}
		}
		return body, &apiError{status: resp.StatusCode, resp: mgmt.ErrorResponse{Error: strings.TrimSpace(string(body))}}
	}
	return body, nil
}

// apiError is an error answer of the API.
type apiError struct {
	status int
	resp   mgmt.ErrorResponse
}

func (e *apiError) Error() string {
	if len(e.resp.Errors) > 1 {
		return fmt.Sprintf("%s (HTTP %d):\n  %s", http.StatusText(e.status), e.status, strings.Join(e.resp.Errors, "\n  "))
	}
	return fmt.Sprintf("%s (HTTP %d)", e.resp.Error, e.status)
}

// run does one request, with the bearer token of --token-file if any,
// and prints the answer: the JSON as it came with --json, else what show
// prints from the decoded answer v.
func (c *ctlClient) run(method, path string, v any, show func(w io.Writer)) int {
	var token string
	if c.tokenFile != "" {
		var err error
		if token, err = mgmt.ReadToken(c.tokenFile); err != nil {
			fmt.Fprintf(c.stderr, "natgw ctl: --token-file: %v\n", err)
			return exitUsage
		}
	}
	body, err := c.call(method, path, token)
	if err != nil {
		var ae *apiError
		if c.json && errors.As(err, &ae) {
			c.stdout.Write(body)
		}
		fmt.Fprintf(c.stderr, "natgw ctl: %v\n", err)
		return exitFail
	}
	if c.json {
		var out bytes.Buffer
		if json.Indent(&out, body, "", "  ") != nil {
			out.Reset()
			out.Write(body)
		}
		if !bytes.HasSuffix(out.Bytes(), []byte("\n")) {
			out.WriteByte('\n')
		}
		c.stdout.Write(out.Bytes())
		return exitOK
	}
	if err := json.Unmarshal(body, v); err != nil {
		fmt.Fprintf(c.stderr, "natgw ctl: unexpected answer from %s: %v\n", c.base, err)
		return exitFail
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	show(tw)
	tw.Flush()
	return exitOK
}

func (c *ctlClient) status(args []string) int {
	if _, ok := c.subFlags("status", args, 0, nil); !ok {
		return exitUsage
	}
	var st mgmt.StatusResponse
	return c.run(http.MethodGet, "/v1/status", &st, func(w io.Writer) {
		up := time.Duration(st.UptimeSeconds * float64(time.Second)).Round(time.Second)
		fmt.Fprintf(w, "natgw %s\tdriver %s\tup %s\n", st.Version, st.Driver, up)
		fmt.Fprintf(w, "configuration\tgeneration %d\t%s\n\n", st.ConfigGeneration, st.ConfigSource)
		fmt.Fprintln(w, "PORT\tNAME\tLINK\tRX PACKETS\tTX PACKETS\tNIC DROPS\tRSS")
		for _, p := range st.Ports {
			link := "down"
			if p.Link {
				link = "up"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%d\t%s\n", p.Role, p.Name, link, p.RxPackets, p.TxPackets, p.NICDrops, p.RSS)
		}
		fmt.Fprintln(w, "\nWORKER\tFLOWS\tPACKETS\tRX PACKETS\tBUSY")
		for _, wk := range st.Workers {
			fmt.Fprintf(w, "%d\t%d\t%d\t%d\t%.1f%%\n", wk.ID, wk.Flows, wk.Packets, wk.RxPackets, wk.BusyRatio*100)
		}
		showBGP(w, st.BGP)
	})
}

func (c *ctlClient) mapping(args []string) int {
	pos, ok := c.subFlags("mapping", args, 1, nil)
	if !ok {
		return exitUsage
	}
	var m mgmt.MappingResponse
	return c.run(http.MethodGet, "/v1/mappings/"+url.PathEscape(pos[0]), &m, func(w io.Writer) {
		public, ports := "none (no block assigned)", "none"
		if m.Public != nil {
			public = *m.Public
		}
		if m.Ports != nil {
			ports = fmt.Sprintf("%d-%d (%d ports)", m.Ports.First, m.Ports.Last, int(m.Ports.Last)-int(m.Ports.First)+1)
		}
		pool := m.Pool
		if pool == "" {
			pool = "-"
		}
		fmt.Fprintf(w, "private\t%s\n", m.Private)
		fmt.Fprintf(w, "scenario\t%s\n", m.Scenario)
		fmt.Fprintf(w, "pool\t%s\n", pool)
		fmt.Fprintf(w, "public\t%s\n", public)
		fmt.Fprintf(w, "ports\t%s\n", ports)
		fmt.Fprintf(w, "flows\t%d\n", m.Flows)
		fmt.Fprintf(w, "ports in use\t%d\n", m.PortsInUse)
	})
}

func (c *ctlClient) flows(args []string) int {
	var private string
	limit := mgmt.DefaultFlowsLimit
	if _, ok := c.subFlags("flows", args, 0, func(fs *flag.FlagSet) {
		fs.StringVar(&private, "private", "", "only flows of this private address")
		fs.IntVar(&limit, "limit", limit, "at most this many flows")
	}); !ok {
		return exitUsage
	}
	q := url.Values{}
	if private != "" {
		q.Set("private", private)
	}
	q.Set("limit", strconv.Itoa(limit))
	var fl mgmt.FlowsResponse
	return c.run(http.MethodGet, "/v1/flows?"+q.Encode(), &fl, func(w io.Writer) {
		fmt.Fprintln(w, "PROTO\tPRIVATE\tPUBLIC\tREMOTE\tSTATE\tIDLE\tWORKER")
		for _, f := range fl.Flows {
			idle := time.Duration(f.IdleSeconds * float64(time.Second)).Round(100 * time.Millisecond)
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", f.Protocol, f.Private, f.Public, f.Remote, f.State, idle, f.Worker)
		}
		fmt.Fprintf(w, "(%d flows", len(fl.Flows))
		if len(fl.Flows) == limit {
			fmt.Fprintf(w, "; the limit, raise it with --limit")
		}
		fmt.Fprintln(w, ")")
	})
}

// who asks GET /v1/attribution which private address held a public
// address and port at a time (issue 16's abuse question).
func (c *ctlClient) who(args []string) int {
	var at string
	pos, ok := c.subFlags("who", args, 1, func(fs *flag.FlagSet) {
		fs.StringVar(&at, "at", "", "the time of the report, RFC 3339 (\"2026-03-01T03:12:00Z\"); default now")
	})
	if !ok {
		return exitUsage
	}
	ap, err := netip.ParseAddrPort(pos[0])
	if err != nil || !ap.Addr().Is4() {
		fmt.Fprintf(c.stderr, "natgw ctl who: %q is not a public IPv4 address and port, like 198.19.1.10:2417\n", pos[0])
		return exitUsage
	}
	q := url.Values{}
	q.Set("public", ap.Addr().String())
	q.Set("port", strconv.Itoa(int(ap.Port())))
	if at != "" {
		q.Set("at", at)
	}
	var r mgmt.AttributionResponse
	return c.run(http.MethodGet, "/v1/attribution?"+q.Encode(), &r, func(w io.Writer) {
		when := r.At.UTC().Format(time.RFC3339Nano)
		if len(r.Holders) == 0 {
			fmt.Fprintf(w, "no private address held %s:%d at %s\n", r.Public, r.Port, when)
			return
		}
		fmt.Fprintf(w, "%s:%d at %s was held by:\n\n", r.Public, r.Port, when)
		fmt.Fprintln(w, "PRIVATE\tPORTS\tSCOPE\tNAME\tGENERATION\tFROM\tUNTIL")
		for _, h := range r.Holders {
			name := h.Name
			if name == "" {
				name = "-"
			}
			until := "now (" + h.EndReason + ")"
			if h.End != nil {
				until = h.End.UTC().Format(time.RFC3339Nano) + " (" + h.EndReason + ")"
			}
			fmt.Fprintf(w, "%s\t%d-%d\t%s\t%s\t%d\t%s\t%s\n", h.Private, h.Ports.First, h.Ports.Last,
				h.Scope, name, h.Generation, h.Start.UTC().Format(time.RFC3339Nano), until)
		}
	})
}
func (c *ctlClient) drain(args []string) int {
	if _, ok := c.subFlags("drain", args, 0, nil); !ok {
		return exitUsage
	}
	var r map[string]string
	return c.run(http.MethodPost, "/v1/drain", &r, func(w io.Writer) {
		fmt.Fprintln(w, "draining: new flows leave this node (redirected to a cluster peer with bgp.cluster_peers, else the inside routes are withdrawn);")
		fmt.Fprintln(w, "natgw exits once its flows ended or bgp.drain_deadline passed (see ctl status)")
	})
}

func (c *ctlClient) drainFrontend(args []string) int {
	var cancel bool
	pos, ok := c.subFlags("drain-frontend", args, 1, func(fs *flag.FlagSet) {
		fs.BoolVar(&cancel, "cancel", false, "undo a drain set at run time")
	})
	if !ok {
		return exitUsage
	}
	verb := "drain"
	if cancel {
		verb = "undrain"
	}
	var r mgmt.DrainFrontendResponse
	return c.run(http.MethodPost, "/v1/frontends/"+url.PathEscape(pos[0])+"/"+verb, &r, func(w io.Writer) {
		if !r.Draining {
			fmt.Fprintf(w, "frontend %s no longer drains (generation %d)\n", r.Frontend, r.Generation)
			return
		}
		fmt.Fprintf(w, "frontend %s drains (generation %d): no new flows on it; its flows live until they end or reload.reclaim_deadline\n", r.Frontend, r.Generation)
		if len(r.Stuck) > 0 {
			fmt.Fprintf(w, "no room on their pools' other frontends: %d members keep their blocks on it: %s\n", len(r.Stuck), strings.Join(r.Stuck, ", "))
		}
	})
}

// showBGP prints the bgp part of the status, if any.
func showBGP(w io.Writer, v any) {
	if v == nil {
		return
	}
	b, err := json.Marshal(v)
	var st bgp.Status
	if err != nil || json.Unmarshal(b, &st) != nil {
		return
	}
	state := "ready"
	if !st.Ready {
		state = "not ready: " + strings.Join(st.NotReady, "; ")
	}
	if st.Draining != "" {
		state += ", draining (" + st.Draining + ")"
	}
	fmt.Fprintf(w, "\nBGP\t%s\n", state)
	fmt.Fprintln(w, "PEER\tSIDE\tADDRESS\tAS\tSTATE\tFLAPS")
	for _, p := range st.Peers {
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%d\n", p.Name, p.Side, p.Address, p.AS, p.State, p.Flaps)
	}
	for _, side := range []string{"inside", "outside"} {
		fmt.Fprintf(w, "announced %s\t%s\n", side, strings.Join(st.Announced[side], ", "))
	}
	if st.LastWithdrawal != "" {
		fmt.Fprintf(w, "last withdrawal\t%s at %s\n", st.LastWithdrawal, st.LastWithdrawalAt.Format(time.RFC3339))
	}
}
