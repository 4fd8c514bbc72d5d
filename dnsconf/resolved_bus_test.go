package dnsconf

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

// privateBus starts a dbus-daemon of its own for the test and returns its
// address; the daemon is stopped when the test ends.
func privateBus(t *testing.T) string {
	return startBus(t, `<allow receive_sender="*"/>`)
}

// startBus is privateBus with the policy rule for receiving given: without
// one, the daemon drops every reply, the Hello's too.
func startBus(t *testing.T, receive string) string {
	t.Helper()
	daemon, err := exec.LookPath("dbus-daemon")
	if err != nil {
		t.Skip("no dbus-daemon to run a private bus with")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "bus.conf")
	writeFile(t, conf, `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <listen>unix:path=`+filepath.Join(dir, "bus")+`</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    `+receive+`
  </policy>
</busconfig>
`, 0o644)
	cmd := exec.Command(daemon, "--config-file="+conf, "--nofork", "--nopidfile", "--print-address")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = tWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	// The daemon prints its address once it listens.
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("dbus-daemon printed no address: %v", err)
	}
	return strings.TrimSpace(addr)
}

// busResolve1 is a stand-in for systemd-resolved on the private bus: it
// records each call with the signature it arrived with.
type busResolve1 struct {
	mu    sync.Mutex
	calls []string
}

type busAddr struct {
	Family  int32
	Address []byte
}

type busDomain struct {
	Domain      string
	RoutingOnly bool
}

func (r *busResolve1) record(msg dbus.Message, s string) *dbus.Error {
	r.mu.Lock()
	defer r.mu.Unlock()
	sig, _ := msg.Headers[dbus.FieldSignature].Value().(dbus.Signature)
	r.calls = append(r.calls, fmt.Sprintf("%s(%s) %s", msg.Headers[dbus.FieldMember].Value(), sig, s))
	return nil
}

func (r *busResolve1) SetLinkDNS(msg dbus.Message, idx int32, as []busAddr) *dbus.Error {
	var s []string
	for _, a := range as {
		s = append(s, fmt.Sprintf("%d:%s", a.Family, hex.EncodeToString(a.Address)))
	}
	return r.record(msg, fmt.Sprint(idx, " ", strings.Join(s, " ")))
}

func (r *busResolve1) SetLinkDomains(msg dbus.Message, idx int32, ds []busDomain) *dbus.Error {
	var s []string
	for _, d := range ds {
		s = append(s, fmt.Sprintf("%s:%v", d.Domain, d.RoutingOnly))
	}
	return r.record(msg, fmt.Sprint(idx, " ", strings.Join(s, " ")))
}

func (r *busResolve1) RevertLink(msg dbus.Message, idx int32) *dbus.Error {
	return r.record(msg, fmt.Sprint(idx))
}

func (r *busResolve1) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.calls, "\n")
}

// The real D-Bus client, through the public constructor, against a bus
// where a stand-in owns org.freedesktop.resolve1: the calls arrive with
// the signatures of resolved's API (org.freedesktop.resolve1(5)).
func TestResolvedOverDBus(t *testing.T) {
	addr := privateBus(t)
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skipf("no loopback interface: %v", err)
	}
	dir := t.TempDir()
	opts := Options{
		RunDir:     filepath.Join(dir, "run"),
		ResolvConf: filepath.Join(dir, "resolv.conf"),
		Programs:   []string{},
		SystemBus: func(ctx context.Context) (*dbus.Conn, error) {
			return dbus.Connect(addr, dbus.WithContext(ctx))
		},
		Logger: slog.New(slog.NewTextHandler(tWriter{t}, nil)),
	}
	cfg := Config{Link: "office", Iface: "lo", Servers: addrs("198.51.100.2", "2001:db8::53"), Search: []string{"example.org"}}

	// Nobody owns the name yet: not resolved.
	s, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s.Backend() != BackendFile {
		t.Errorf("with the name not owned: backend %q, want file", s.Backend())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	srv, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	fake := &busResolve1{}
	if err := srv.Export(fake, resolvedPath, resolvedManager); err != nil {
		t.Fatal(err)
	}
	if reply, err := srv.RequestName(resolvedName, dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("owning %s: %v %v", resolvedName, reply, err)
	}

	s, err = New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s.Backend() != BackendResolved {
		t.Fatalf("backend %q, want systemd-resolved", s.Backend())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("SetLinkDNS(ia(iay)) %[1]d 2:c6336402 10:20010db8000000000000000000000053\n"+
		"SetLinkDomains(ia(sb)) %[1]d example.org:false\n"+
		"RevertLink(i) %[1]d", lo.Index)
	if got := fake.String(); got != want {
		t.Errorf("resolved got:\n%s\nwant:\n%s", got, want)
	}
	if _, err := os.Lstat(opts.ResolvConf); !os.IsNotExist(err) {
		t.Errorf("resolv.conf touched with resolved running: %v", err)
	}
}

// A method resolved refuses comes back as an error naming it.
func TestResolvedOverDBusRefused(t *testing.T) {
	addr := privateBus(t)
	srv, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	// Owned, but nothing exported: every call fails with UnknownObject.
	if _, err := srv.RequestName(resolvedName, dbus.NameFlagDoNotQueue); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s, err := New(Config{Link: "office", Iface: "lo", Servers: addrs("198.51.100.2")}, Options{
		RunDir:     filepath.Join(dir, "run"),
		ResolvConf: filepath.Join(dir, "resolv.conf"),
		SystemBus: func(ctx context.Context) (*dbus.Conn, error) {
			return dbus.Connect(addr, dbus.WithContext(ctx))
		},
		Logger: slog.New(slog.NewTextHandler(tWriter{t}, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Apply(context.Background())
	if err == nil || !strings.Contains(err.Error(), "systemd-resolved: SetLinkDNS 198.51.100.2 on lo") {
		t.Errorf("Apply: %v", err)
	}
	// Undoing it (RevertLink) failed alike, so the state stays, and Close
	// tries again and says why it cannot.
	if !Leftovers(filepath.Join(dir, "run"), "office") {
		t.Error("state dropped although RevertLink failed")
	}
	if err := s.Close(); err == nil || !strings.Contains(err.Error(), "systemd-resolved: RevertLink lo") {
		t.Errorf("Close: %v", err)
	}
}

// A bus that takes the connection and never answers (here: it drops every
// reply, the Hello's too) does not hang Apply: the question whether
// resolved runs gives up with the context, and the next backend is used.
func TestResolvedBusThatNeverAnswers(t *testing.T) {
	addr := startBus(t, "")
	dir := t.TempDir()
	s, err := New(Config{Link: "office", Iface: "lo", Servers: addrs("198.51.100.2")}, Options{
		RunDir:     filepath.Join(dir, "run"),
		ResolvConf: filepath.Join(dir, "resolv.conf"),
		Programs:   []string{},
		SystemBus: func(ctx context.Context) (*dbus.Conn, error) {
			return dbus.Connect(addr, dbus.WithContext(ctx))
		},
		Logger: slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := s.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Backend() != BackendFile {
		t.Errorf("backend %q, want file", s.Backend())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
