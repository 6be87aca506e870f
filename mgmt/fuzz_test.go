package mgmt

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

// fuzzServer is one appliance shared by a fuzz target's inputs: its
// dataplane is stopped and queries time out at once, so every input is
// cheap and the handlers' parsing and error paths are what is exercised.
func fuzzServer(f *testing.F) *Server {
	a := newAppliance(&testing.T{}, applianceOptions{noStart: true})
	a.srv.o.QueryTimeout = time.Millisecond
	return a.srv
}

// checkJSON serves one request and fails unless the answer is JSON with a
// sensible status.
func checkJSON(t *testing.T, s *Server, method, target string) {
	req := httptest.NewRequest(method, "http://natgw/", nil)
	req.URL.Path = target
	if u, err := url.Parse("http://natgw" + target); err == nil {
		req.URL = u
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	if rec.Code < 200 || rec.Code >= 600 {
		t.Fatalf("%s %q: status %d", method, target, rec.Code)
	}
	if rec.Code >= 500 && rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("%s %q: status %d: %s", method, target, rec.Code, rec.Body)
	}
	if method == http.MethodHead {
		return
	}
	if !json.Valid(rec.Body.Bytes()) {
		t.Fatalf("%s %q: body is not JSON: %q", method, target, rec.Body)
	}
}

func FuzzMappingPath(f *testing.F) {
	for _, s := range []string{"10.0.1.4", "10.0.1.256", "", "::1", "1.2.3.4%eth0", "../../etc", "10.0.3.7/x", "%zz", "0x0a.0.0.1"} {
		f.Add(s)
	}
	s := fuzzServer(f)
	f.Fuzz(func(t *testing.T, ip string) {
		checkJSON(t, s, http.MethodGet, "/v1/mappings/"+ip)
	})
}

func FuzzFlowsQuery(f *testing.F) {
	for _, s := range []string{"", "private=10.0.1.4", "limit=5", "limit=-1", "private=x&limit=y", "limit=1e9", "a=b", "%"} {
		f.Add(s)
	}
	s := fuzzServer(f)
	f.Fuzz(func(t *testing.T, query string) {
		checkJSON(t, s, http.MethodGet, "/v1/flows?"+query)
	})
}

func FuzzAnyRequest(f *testing.F) {
	for _, s := range []string{"GET /", "POST /v1/status", "PUT /v1/config/reload", "GET /readyz", "HEAD /v1/flows"} {
		f.Add(s)
	}
	s := fuzzServer(f)
	f.Fuzz(func(t *testing.T, line string) {
		method, path := "GET", line
		for i := 0; i < len(line); i++ {
			if line[i] == ' ' {
				method, path = line[:i], line[i+1:]
				break
			}
		}
		if method == "" || path == "/metrics" {
			return
		}
		for i := 0; i < len(method); i++ {
			if c := method[i]; c <= ' ' || c >= 0x7f || c == '(' || c == ')' || c == '/' || c == ':' {
				return // not a valid HTTP method token
			}
		}
		checkJSON(t, s, method, path)
	})
}
