package dnsconf

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

// Every test leaves no goroutine behind (D-Bus connections included).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testHost is a host in a temporary directory: resolv.conf and the run
// directory there, no resolvconf program, no system bus, and ppp0 as
// interface 7.
func testHost(t *testing.T) *host {
	t.Helper()
	dir := t.TempDir()
	etc := filepath.Join(dir, "etc")
	if err := os.Mkdir(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	links := &fakeLinks{ifs: []net.Interface{{Index: 1, Name: "lo"}, {Index: 7, Name: "ppp0"}}}
	h := &host{
		runDir:     filepath.Join(dir, "run", "vpn-pppssh"),
		resolvConf: filepath.Join(etc, "resolv.conf"),
		programs:   []string{filepath.Join(dir, "sbin", "resolvconf")},
		bus: func(context.Context) (resolver, error) {
			return nil, errors.New("no system bus in this test")
		},
		interfaces: links.list,
		rename:     os.Rename,
		log:        slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})).With("component", "dns"),
	}
	return h
}

// tWriter sends log lines to t.Logf.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Helper()
	w.t.Logf("%s", strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}

// fakeLinks is the host's interfaces, changeable while a test runs.
type fakeLinks struct {
	mu  sync.Mutex
	ifs []net.Interface
	err error
}

func (f *fakeLinks) list() ([]net.Interface, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]net.Interface(nil), f.ifs...), f.err
}

func (f *fakeLinks) set(ifs ...net.Interface) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ifs = ifs
}

// fakeResolved is systemd-resolved as the resolver seam sees it; it prints
// the calls it got, one a line, with addresses in hex as they are sent.
type fakeResolved struct {
	mu      sync.Mutex
	owned   bool   // the name is owned on the bus
	failOn  string // a call whose method name this is fails
	calls   []string
	opened  int
	closed  int
	busDown bool // connecting fails
}

func (f *fakeResolved) connect(context.Context) (resolver, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.busDown {
		return nil, errors.New("dial unix /run/dbus/system_bus_socket: connect: no such file or directory")
	}
	f.opened++
	return fakeConn{f}, nil
}

func (f *fakeResolved) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.calls, "\n")
}

func (f *fakeResolved) record(method, args string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failOn == method {
		return fmt.Errorf("org.freedesktop.DBus.Error.AccessDenied: %s refused", method)
	}
	f.calls = append(f.calls, method+" "+args)
	return nil
}

type fakeConn struct{ f *fakeResolved }

func (c fakeConn) running(context.Context) (bool, error) {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	return c.f.owned, nil
}

func (c fakeConn) setLinkDNS(_ context.Context, idx int32, as []linkAddr) error {
	var s []string
	for _, a := range as {
		s = append(s, fmt.Sprintf("%d:%s", a.Family, hex.EncodeToString(a.Address)))
	}
	return c.f.record("SetLinkDNS", fmt.Sprintf("%d %s", idx, strings.Join(s, " ")))
}

func (c fakeConn) setLinkDomains(_ context.Context, idx int32, ds []linkDomain) error {
	var s []string
	for _, d := range ds {
		s = append(s, fmt.Sprintf("%s:%v", d.Domain, d.RoutingOnly))
	}
	return c.f.record("SetLinkDomains", fmt.Sprintf("%d %s", idx, strings.Join(s, " ")))
}

func (c fakeConn) revertLink(_ context.Context, idx int32) error {
	return c.f.record("RevertLink", fmt.Sprint(idx))
}

func (c fakeConn) close() error {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	c.f.closed++
	return nil
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// mustApply makes Settings for cfg on h and applies them.
func mustApply(t *testing.T, h *host, cfg Config) *Settings {
	t.Helper()
	s, err := newSettings(cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(context.Background()); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return s
}

var office = Config{Link: "office", Iface: "ppp0", Servers: addrs("198.51.100.2", "2001:db8::53"), Search: []string{"example.org"}}
