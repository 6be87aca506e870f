package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"log"
	"net"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testServer(t *testing.T) (*server, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	return &server{log: log.New(&logs, "", 0), defaultBytes: 100}, &logs
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    options
		wantErr string
	}{
		{
			name: "all listeners",
			args: []string{"-http", ":8080", "-udp", ":9000", "-tcp", ":9001", "-bytes", "5", "-quiet"},
			want: options{httpAddr: ":8080", udpAddr: ":9000", tcpAddr: ":9001", defaultBytes: 5, quiet: true},
		},
		{
			name: "udp only, default bytes",
			args: []string{"-udp", "127.0.0.1:9000"},
			want: options{udpAddr: "127.0.0.1:9000", defaultBytes: 1 << 20},
		},
		{name: "nothing to serve", args: nil, wantErr: "nothing to serve"},
		{name: "negative bytes", args: []string{"-http", ":1", "-bytes", "-1"}, wantErr: "-bytes -1"},
		{name: "too many bytes", args: []string{"-http", ":1", "-bytes", "2000000000"}, wantErr: "-bytes 2000000000"},
		{name: "stray argument", args: []string{"-http", ":1", "extra"}, wantErr: "unexpected arguments"},
		{name: "unknown flag", args: []string{"-nope"}, wantErr: "flag provided but not defined"},
		{name: "bad number", args: []string{"-http", ":1", "-bytes", "many"}, wantErr: "invalid value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFlags(tt.args, io.Discard)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseFlagsHelp(t *testing.T) {
	var usage bytes.Buffer
	_, err := parseFlags([]string{"-h"}, &usage)
	assert.ErrorIs(t, err, flag.ErrHelp)
	assert.Contains(t, usage.String(), "-http")
}

func TestHandler(t *testing.T) {
	const client = "192.0.2.1:1234" // httptest.NewRequest's RemoteAddr
	tests := []struct {
		name       string
		method     string
		target     string
		body       string
		wantStatus int
		wantBody   string // exact body; ignored when wantLen >= 0
		wantLen    int    // expected body length for /bytes, or -1
		wantPrefix string
	}{
		{name: "root answers client address", method: "GET", target: "/", wantStatus: 200, wantBody: client + "\n", wantLen: -1},
		{name: "any path answers client address", method: "GET", target: "/a/b?c=d", wantStatus: 200, wantBody: client + "\n", wantLen: -1},
		{name: "POST elsewhere answers client address", method: "POST", target: "/x", body: "data", wantStatus: 200, wantBody: client + "\n", wantLen: -1},
		{name: "bytes n=10", method: "GET", target: "/bytes?n=10", wantStatus: 200, wantLen: 10, wantPrefix: "0123456789"},
		{name: "bytes n=0", method: "GET", target: "/bytes?n=0", wantStatus: 200, wantLen: 0},
		{name: "bytes longer than the pattern", method: "GET", target: "/bytes?n=200", wantStatus: 200, wantLen: 200, wantPrefix: pattern + "0123"},
		{name: "bytes default size", method: "GET", target: "/bytes", wantStatus: 200, wantLen: 100},
		{name: "bytes negative", method: "GET", target: "/bytes?n=-1", wantStatus: 400, wantLen: -1, wantPrefix: "n must be"},
		{name: "bytes not a number", method: "GET", target: "/bytes?n=abc", wantStatus: 400, wantLen: -1, wantPrefix: "n must be"},
		{name: "bytes over the cap", method: "GET", target: "/bytes?n=" + strconv.Itoa(maxBytes+1), wantStatus: 400, wantLen: -1, wantPrefix: "n must be"},
		{name: "bytes HEAD has no body", method: "HEAD", target: "/bytes?n=5", wantStatus: 200, wantLen: 0},
		{name: "upload counts the body", method: "POST", target: "/upload", body: strings.Repeat("x", 1000), wantStatus: 200, wantBody: client + " 1000\n", wantLen: -1},
		{name: "upload of nothing", method: "POST", target: "/upload", wantStatus: 200, wantBody: client + " 0\n", wantLen: -1},
	}
	s, _ := testServer(t)
	h := s.handler()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.target, strings.NewReader(tt.body))
			require.Equal(t, client, req.RemoteAddr)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			assert.Equal(t, tt.wantStatus, rec.Code)
			body := rec.Body.String()
			if tt.wantLen >= 0 {
				assert.Len(t, body, tt.wantLen)
			} else if tt.wantBody != "" {
				assert.Equal(t, tt.wantBody, body)
			}
			assert.True(t, strings.HasPrefix(body, tt.wantPrefix), "body %.80q should start with %q", body, tt.wantPrefix)
			if tt.wantStatus == 200 && strings.HasPrefix(tt.target, "/bytes") {
				assert.Equal(t, "application/octet-stream", rec.Header().Get("Content-Type"))
				want := tt.wantLen
				if tt.method == "HEAD" {
					want = 5
				}
				assert.Equal(t, strconv.Itoa(want), rec.Header().Get("Content-Length"))
			}
		})
	}
}

func TestQuietLogsNoRequests(t *testing.T) {
	s, logs := testServer(t)
	s.quiet = true
	rec := httptest.NewRecorder()
	s.handler().ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	require.Equal(t, 200, rec.Code)
	assert.Empty(t, logs.String())

	s.quiet = false
	s.handler().ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	assert.Contains(t, logs.String(), "http GET / from 192.0.2.1:1234")
}

func TestUDPReply(t *testing.T) {
	tests := []struct {
		name    string
		from    netip.AddrPort
		payload string
		want    string
	}{
		{name: "ipv4", from: netip.MustParseAddrPort("198.19.1.10:40123"), payload: "hello", want: "198.19.1.10:40123 hello"},
		{name: "empty payload", from: netip.MustParseAddrPort("10.0.0.1:1"), payload: "", want: "10.0.0.1:1 "},
		{name: "binary payload", from: netip.MustParseAddrPort("198.19.1.50:65535"), payload: "\x00\xff\n", want: "198.19.1.50:65535 \x00\xff\n"},
	}
	buf := make([]byte, 0, 8) // too small on purpose: udpReply must grow it
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf = udpReply(buf, tt.from, []byte(tt.payload))
			assert.Equal(t, tt.want, string(buf))
		})
	}
}

func TestServeUDP(t *testing.T) {
	s, _ := testServer(t)
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.serveUDP(ctx, conn) }()

	client, err := net.DialUDP("udp", nil, conn.LocalAddr().(*net.UDPAddr))
	require.NoError(t, err)
	defer client.Close()
	self := client.LocalAddr().(*net.UDPAddr).AddrPort().String()

	tests := []struct {
		name    string
		payload string
	}{
		{name: "text", payload: "hello-udp"},
		{name: "empty", payload: ""},
		{name: "large", payload: strings.Repeat("u", 8000)},
	}
	buf := make([]byte, udpBufferSize)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := client.Write([]byte(tt.payload))
			require.NoError(t, err)
			n, err := client.Read(buf)
			require.NoError(t, err)
			assert.Equal(t, self+" "+tt.payload, string(buf[:n]))
		})
	}

	cancel()
	conn.Close()
	assert.NoError(t, <-done)
}

func TestServeTCP(t *testing.T) {
	s, _ := testServer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.serveTCP(ctx, ln) }()

	tests := []struct {
		name    string
		payload []byte
	}{
		{name: "line", payload: []byte("hello-tcp\n")},
		{name: "empty", payload: nil},
		{name: "1 MB", payload: bytes.Repeat([]byte("0123456789abcdef"), 1<<16)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", ln.Addr().String())
			require.NoError(t, err)
			defer c.Close()
			// Write concurrently: the echo comes back while we still send.
			writeErr := make(chan error, 1)
			go func() {
				_, err := c.Write(tt.payload)
				if err == nil {
					err = c.(*net.TCPConn).CloseWrite()
				}
				writeErr <- err
			}()
			got, err := io.ReadAll(c)
			require.NoError(t, err)
			require.NoError(t, <-writeErr)
			assert.True(t, bytes.Equal(tt.payload, got), "echoed %d bytes, sent %d", len(got), len(tt.payload))
		})
	}

	// A connection still open when the server stops is closed by it.
	idle, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer idle.Close()
	_, err = idle.Write([]byte("x"))
	require.NoError(t, err)
	one := make([]byte, 1)
	_, err = io.ReadFull(idle, one)
	require.NoError(t, err)

	cancel()
	ln.Close()
	assert.NoError(t, <-done)
	_, err = idle.Read(one)
	assert.Error(t, err, "open connection should be closed when the server stops")
}

func TestRun(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()

	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "stops cleanly when cancelled", args: []string{"-http", "127.0.0.1:0", "-udp", "127.0.0.1:0", "-tcp", "127.0.0.1:0"}},
		{name: "busy http port", args: []string{"-http", busy.Addr().String()}, wantErr: "http:"},
		{name: "busy tcp port after good listeners", args: []string{"-http", "127.0.0.1:0", "-udp", "127.0.0.1:0", "-tcp", busy.Addr().String()}, wantErr: "tcp:"},
		{name: "bad udp address", args: []string{"-udp", "not-an-address"}, wantErr: "udp:"},
		{name: "flag error", args: nil, wantErr: "nothing to serve"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // serve nothing: return as soon as the listeners are open
			var logs bytes.Buffer
			err := run(ctx, tt.args, &logs)
			if tt.wantErr == "" {
				require.NoError(t, err)
				assert.Contains(t, logs.String(), "http listening on 127.0.0.1:")
				assert.Contains(t, logs.String(), "stopped")
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
		})
	}
}

func TestServe(t *testing.T) {
	s, logs := testServer(t)
	l, err := listen(options{httpAddr: "127.0.0.1:0", udpAddr: "127.0.0.1:0", tcpAddr: "127.0.0.1:0"})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.serve(ctx, l) }()

	tests := []struct {
		name string
		ask  func(t *testing.T) (got, local string)
		want string // format with the client's own address
	}{
		{
			name: "http",
			ask: func(t *testing.T) (string, string) {
				c, err := net.Dial("tcp", l.http.Addr().String())
				require.NoError(t, err)
				defer c.Close()
				_, err = io.WriteString(c, "GET / HTTP/1.0\r\n\r\n")
				require.NoError(t, err)
				resp, err := io.ReadAll(c)
				require.NoError(t, err)
				_, body, found := strings.Cut(string(resp), "\r\n\r\n")
				require.True(t, found, "no HTTP body in %q", resp)
				return body, c.LocalAddr().String()
			},
			want: "%s\n",
		},
		{
			name: "udp",
			ask: func(t *testing.T) (string, string) {
				c, err := net.Dial("udp", l.udp.LocalAddr().String())
				require.NoError(t, err)
				defer c.Close()
				_, err = c.Write([]byte("ping"))
				require.NoError(t, err)
				buf := make([]byte, 100)
				n, err := c.Read(buf)
				require.NoError(t, err)
				return string(buf[:n]), c.LocalAddr().String()
			},
			want: "%s ping",
		},
		{
			name: "tcp",
			ask: func(t *testing.T) (string, string) {
				c, err := net.Dial("tcp", l.tcp.Addr().String())
				require.NoError(t, err)
				defer c.Close()
				_, err = io.WriteString(c, "echo me")
				require.NoError(t, err)
				require.NoError(t, c.(*net.TCPConn).CloseWrite())
				got, err := io.ReadAll(c)
				require.NoError(t, err)
				return string(got), c.LocalAddr().String()
			},
			want: "echo me",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, local := tt.ask(t)
			assert.Equal(t, strings.Replace(tt.want, "%s", local, 1), got)
		})
	}

	cancel()
	assert.NoError(t, <-done)
	assert.Contains(t, logs.String(), "stopped")
	_, err = net.Dial("tcp", l.http.Addr().String())
	assert.Error(t, err, "http listener should be closed after serve returns")
}
