// Command echoserver is the "internet" server of natgw's testbed: it tells
// each client which address and port it saw, so a test on the inside of the
// NAT can check the translation it got.
//
// Usage:
//
//	echoserver [-http ADDR] [-udp ADDR] [-tcp ADDR] [-bytes N] [-quiet]
//
// At least one of -http, -udp and -tcp is required; they can be combined.
//
//   - HTTP: every request is answered with the client address as the server
//     saw it and a newline ("198.19.1.10:40123\n"). GET /bytes?n=N answers
//     with N bytes instead (N defaults to -bytes), for downloads through the
//     small-MTU link. POST /upload reads the whole body and answers
//     "ADDR N\n" where N is the number of bytes received.
//   - UDP: every datagram is echoed back prefixed with the client address
//     and a space ("198.19.1.10:40123 payload").
//   - TCP: the bytes a client sends are echoed back; when the client closes
//     its side, the server closes its side after the last byte.
//
// It logs listeners, requests, connections and datagrams to stderr (only
// listeners and errors with -quiet) and stops cleanly on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
	"time"
)

// maxBytes caps what /bytes serves, so a typo can't fill a disk.
const maxBytes = 1 << 30

// udpBufferSize holds the largest UDP payload.
const udpBufferSize = 65536

// options holds the parsed command line.
type options struct {
	httpAddr     string
	udpAddr      string
	tcpAddr      string
	defaultBytes int64
	quiet        bool
}

// server holds what the three listeners share.
type server struct {
	log          *log.Logger
	defaultBytes int64
	quiet        bool
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "echoserver:", err)
		os.Exit(1)
	}
}

// parseFlags reads the command line; usage and flag errors go to stderr.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("echoserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.httpAddr, "http", "", "serve HTTP on `ADDR` (e.g. :8080): answers the client address; /bytes?n=N, /upload")
	fs.StringVar(&o.udpAddr, "udp", "", "echo UDP datagrams on `ADDR` (e.g. :9000), prefixed with the client address")
	fs.StringVar(&o.tcpAddr, "tcp", "", "echo TCP bytes on `ADDR` (e.g. :9001)")
	fs.Int64Var(&o.defaultBytes, "bytes", 1<<20, "`N` bytes served by /bytes when the request has no n")
	fs.BoolVar(&o.quiet, "quiet", false, "log only listeners and errors")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if o.httpAddr == "" && o.udpAddr == "" && o.tcpAddr == "" {
		return o, errors.New("nothing to serve: give at least one of -http, -udp, -tcp")
	}
	if o.defaultBytes < 0 || o.defaultBytes > maxBytes {
		return o, fmt.Errorf("-bytes %d: must be between 0 and %d", o.defaultBytes, maxBytes)
	}
	return o, nil
}

// run opens every listener the flags ask for and serves until ctx is done.
// A listener that can't be opened is an error before anything is served.
func run(ctx context.Context, args []string, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	s := &server{
		log:          log.New(stderr, "echoserver: ", log.LstdFlags|log.Lmicroseconds),
		defaultBytes: o.defaultBytes,
		quiet:        o.quiet,
	}
	l, err := listen(o)
	if err != nil {
		return err
	}
	return s.serve(ctx, l)
}

// listeners are the open sockets; a nil field is a service not asked for.
type listeners struct {
	http net.Listener
	udp  *net.UDPConn
	tcp  net.Listener
}

// close closes every open socket.
func (l *listeners) close() {
	if l.http != nil {
		l.http.Close()
	}
	if l.udp != nil {
		l.udp.Close()
	}
	if l.tcp != nil {
		l.tcp.Close()
	}
}

// listen opens the sockets of o; on error none stays open.
func listen(o options) (*listeners, error) {
	l := &listeners{}
	var err error
	if o.httpAddr != "" {
		if l.http, err = net.Listen("tcp", o.httpAddr); err != nil {
			l.close()
			return nil, fmt.Errorf("http: %w", err)
		}
	}
	if o.udpAddr != "" {
		addr, err := net.ResolveUDPAddr("udp", o.udpAddr)
		if err == nil {
			l.udp, err = net.ListenUDP("udp", addr)
		}
		if err == nil {
			err = enablePktinfo(l.udp)
		}
		if err != nil {
			l.close()
			return nil, fmt.Errorf("udp: %w", err)
		}
	}
	if o.tcpAddr != "" {
		if l.tcp, err = net.Listen("tcp", o.tcpAddr); err != nil {
			l.close()
			return nil, fmt.Errorf("tcp: %w", err)
		}
	}
	return l, nil
}

// serve runs every open listener until ctx is done or one of them fails,
// then closes them all and waits for their loops to return.
func (s *server) serve(ctx context.Context, l *listeners) error {
	var serves []func() error
	var hs *http.Server
	if l.http != nil {
		hs = &http.Server{Handler: s.handler(), ReadHeaderTimeout: 10 * time.Second}
		s.log.Printf("http listening on %s", l.http.Addr())
		serves = append(serves, func() error {
			if err := hs.Serve(l.http); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("http: %w", err)
			}
			return nil
		})
	}
	if l.udp != nil {
		s.log.Printf("udp listening on %s", l.udp.LocalAddr())
		serves = append(serves, func() error { return s.serveUDP(ctx, l.udp) })
	}
	if l.tcp != nil {
		s.log.Printf("tcp echo listening on %s", l.tcp.Addr())
		serves = append(serves, func() error { return s.serveTCP(ctx, l.tcp) })
	}

	errs := make(chan error, len(serves))
	for _, serve := range serves {
		go func() { errs <- serve() }()
	}
	remaining := len(serves)
	var first error
	select {
	case <-ctx.Done():
	case first = <-errs:
		remaining--
	}
	if hs != nil {
		hs.Close()
	}
	l.close()
	for ; remaining > 0; remaining-- {
		if err := <-errs; first == nil {
			first = err
		}
	}
	s.log.Printf("stopped")
	return first
}

// logf logs a per-request line unless -quiet is set.
func (s *server) logf(format string, args ...any) {
	if !s.quiet {
		s.log.Printf(format, args...)
	}
}

// handler returns the HTTP handler: /bytes, /upload, and the client address
// for every other path.
func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/bytes", s.serveBytes)
	mux.HandleFunc("/upload", s.serveUpload)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.logf("http %s %s from %s", r.Method, r.URL.RequestURI(), r.RemoteAddr)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, r.RemoteAddr+"\n")
	})
	return mux
}

// serveBytes answers GET /bytes?n=N with N bytes of a repeating pattern.
func (s *server) serveBytes(w http.ResponseWriter, r *http.Request) {
	n := s.defaultBytes
	if q := r.URL.Query().Get("n"); q != "" {
		v, err := strconv.ParseInt(q, 10, 64)
		if err != nil || v < 0 || v > maxBytes {
			s.logf("http %s %s from %s: bad n", r.Method, r.URL.RequestURI(), r.RemoteAddr)
			http.Error(w, fmt.Sprintf("n must be an integer between 0 and %d", maxBytes), http.StatusBadRequest)
			return
		}
		n = v
	}
	s.logf("http %s %s from %s: %d bytes", r.Method, r.URL.RequestURI(), r.RemoteAddr, n)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	if r.Method == http.MethodHead {
		return
	}
	if _, err := io.CopyN(w, patternReader{}, n); err != nil {
		s.log.Printf("http /bytes to %s: %v", r.RemoteAddr, err)
	}
}

// serveUpload reads the request body and answers with the client address
// and the number of bytes received.
func (s *server) serveUpload(w http.ResponseWriter, r *http.Request) {
	n, err := io.Copy(io.Discard, r.Body)
	if err != nil {
		s.log.Printf("http %s %s from %s: body: %v", r.Method, r.URL.RequestURI(), r.RemoteAddr, err)
		http.Error(w, "reading body: "+err.Error(), http.StatusBadRequest)
		return
	}
	s.logf("http %s %s from %s: received %d bytes", r.Method, r.URL.RequestURI(), r.RemoteAddr, n)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "%s %d\n", r.RemoteAddr, n)
}

// patternReader fills reads with a repeating printable pattern.
type patternReader struct{}

const pattern = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ\n"

func (patternReader) Read(p []byte) (int, error) {
	for i := 0; i < len(p); {
		i += copy(p[i:], pattern)
	}
	return len(p), nil
}

// enablePktinfo asks the kernel for each datagram's destination address
// (IP_PKTINFO), so replies can be sent from it.
func enablePktinfo(c *net.UDPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
	}); err != nil {
		return err
	}
	return serr
}

// replySource turns a received IP_PKTINFO message into the control message
// that sends a reply from the same local address (nil if there is none).
func replySource(oob []byte) []byte {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	for _, m := range msgs {
		if m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_PKTINFO && len(m.Data) >= unix.SizeofInet4Pktinfo {
			var info unix.Inet4Pktinfo
			copy(info.Spec_dst[:], m.Data[8:12]) // ipi_addr: the datagram's destination
			return unix.PktInfo4(&info)
		}
	}
	return nil
}

// udpReply builds the answer to a datagram: the client address, a space,
// and the payload. The reply is appended to buf[:0].
func udpReply(buf []byte, from netip.AddrPort, payload []byte) []byte {
	buf = from.AppendTo(buf[:0])
	buf = append(buf, ' ')
	return append(buf, payload...)
}

// serveUDP echoes datagrams until ctx is done or the socket is closed.
func (s *server) serveUDP(ctx context.Context, conn *net.UDPConn) error {
	in := make([]byte, udpBufferSize)
	out := make([]byte, 0, udpBufferSize+64)
	oob := make([]byte, 128)
	for {
		n, oobn, _, from, err := conn.ReadMsgUDPAddrPort(in, oob)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("udp: %w", err)
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		out = udpReply(out, from, in[:n])
		s.logf("udp %d bytes from %s", n, from)
		// Answer from the address the datagram was sent to: a socket on
		// the wildcard address would otherwise answer from the primary
		// address, which no NAT matches to the client's flow.
		if _, _, err := conn.WriteMsgUDPAddrPort(out, replySource(oob[:oobn]), from); err != nil {
			s.log.Printf("udp reply to %s: %v", from, err)
		}
	}
}

// serveTCP accepts connections and echoes each until ctx is done or the
// listener is closed. Open connections are closed on the way out.
func (s *server) serveTCP(ctx context.Context, ln net.Listener) error {
	var (
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
		wg    sync.WaitGroup
	)
	defer func() {
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("tcp: %w", err)
		}
		mu.Lock()
		conns[c] = struct{}{}
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.echoTCP(c)
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
		}()
	}
}

// echoTCP copies what the client sends back to it, then closes.
func (s *server) echoTCP(c net.Conn) {
	s.logf("tcp connection from %s", c.RemoteAddr())
	n, err := io.Copy(c, c)
	if err != nil && !errors.Is(err, net.ErrClosed) {
		s.log.Printf("tcp %s: %v", c.RemoteAddr(), err)
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	c.Close()
	s.logf("tcp %s closed after %d bytes", c.RemoteAddr(), n)
}
