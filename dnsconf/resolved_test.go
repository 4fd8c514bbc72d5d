package dnsconf

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
)

// resolvedHost is a test host where systemd-resolved runs.
func resolvedHost(t *testing.T) (*host, *fakeResolved, *fakeLinks) {
	h := testHost(t)
	f := &fakeResolved{owned: true}
	links := &fakeLinks{ifs: []net.Interface{{Index: 1, Name: "lo"}, {Index: 7, Name: "ppp0"}}}
	h.bus, h.interfaces = f.connect, links.list
	t.Cleanup(func() {
		if f.opened != f.closed {
			t.Errorf("%d bus connections opened, %d closed", f.opened, f.closed)
		}
	})
	return h, f, links
}

func TestResolvedApplyAndClose(t *testing.T) {
	h, f, _ := resolvedHost(t)
	writeFile(t, h.resolvConf, origText, 0o644)
	fakeResolvconf(t, h) // installed, but resolved comes first
	cfg := office
	cfg.Servers = addrs("198.51.100.2", "2001:db8::53", "fe80::1")
	cfg.Search = []string{"example.org", "lab"}
	s := mustApply(t, h, cfg)
	if s.Backend() != BackendResolved {
		t.Fatalf("backend %q", s.Backend())
	}
	// AF_INET is 2 and 4 bytes, AF_INET6 is 10 and 16, in network order.
	want := "SetLinkDNS 7 2:c6336402 10:20010db8000000000000000000000053 10:fe800000000000000000000000000001\n" +
		"SetLinkDomains 7 example.org:false lab:false"
	if got := f.String(); got != want {
		t.Errorf("calls:\n%s\nwant:\n%s", got, want)
	}
	if got := s.String(); got != "dns 198.51.100.2 2001:db8::53 fe80::1 search example.org lab via systemd-resolved on ppp0" {
		t.Errorf("String() = %q", got)
	}
	if readFile(t, h.resolvConf) != origText {
		t.Error("resolv.conf was written")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := f.String(); !strings.HasSuffix(got, "\nRevertLink 7") {
		t.Errorf("calls after Close:\n%s", got)
	}
	if Leftovers(h.runDir, "office") {
		t.Error("state left")
	}
	n := len(f.calls)
	if err := s.Close(); err != nil || len(f.calls) != n {
		t.Errorf("second Close: %v, %d calls more", err, len(f.calls)-n)
	}
}

// Only what is configured is set: no domains, no SetLinkDomains.
func TestResolvedServersOnly(t *testing.T) {
	h, f, _ := resolvedHost(t)
	s := mustApply(t, h, Config{Link: "office", Iface: "ppp0", Servers: addrs("::ffff:198.51.100.2")})
	defer s.Close()
	if got := f.String(); got != "SetLinkDNS 7 2:c6336402" {
		t.Errorf("calls %q", got)
	}
}

// Without resolved on the bus (not running, or no bus), the next backend.
func TestResolvedNotRunning(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*fakeResolved)
	}{
		{"name not owned", func(f *fakeResolved) { f.owned = false }},
		{"no system bus", func(f *fakeResolved) { f.busDown = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, f, _ := resolvedHost(t)
			tc.set(f)
			s := mustApply(t, h, office)
			defer s.Close()
			if s.Backend() != BackendFile || len(f.calls) > 0 {
				t.Errorf("backend %q, calls %q", s.Backend(), f.calls)
			}
		})
	}
}

// A call refused: the error names the backend, the method and the
// interface; what was set is reverted and no state is left.
func TestResolvedCallFails(t *testing.T) {
	h, f, _ := resolvedHost(t)
	f.failOn = "SetLinkDomains"
	s, err := newSettings(office, h)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Apply(context.Background())
	if err == nil || !strings.Contains(err.Error(), "systemd-resolved: SetLinkDomains [example.org] on ppp0 (index 7): org.freedesktop.DBus.Error.AccessDenied") {
		t.Errorf("Apply: %v", err)
	}
	if got := f.String(); got != "SetLinkDNS 7 2:c6336402 10:20010db8000000000000000000000053\nRevertLink 7" {
		t.Errorf("calls:\n%s", got)
	}
	if Leftovers(h.runDir, "office") {
		t.Error("state left")
	}
	if err := s.Close(); err != nil || strings.Count(f.String(), "RevertLink") != 1 {
		t.Errorf("Close after a failed Apply: %v, calls %q", err, f.calls)
	}
}

func TestResolvedNoInterface(t *testing.T) {
	h, f, links := resolvedHost(t)
	links.set(net.Interface{Index: 1, Name: "lo"})
	s, err := newSettings(office, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(context.Background()); !errors.Is(err, errNoInterface) || !strings.Contains(err.Error(), "systemd-resolved: interface ppp0") {
		t.Errorf("Apply without ppp0: %v", err)
	}
	if len(f.calls) > 0 || Leftovers(h.runDir, "office") {
		t.Errorf("calls %q, or state left", f.calls)
	}
}

// After a crash: RevertLink only for the interface that was configured,
// when it is still there. Gone, its settings went with it; a new ppp0 with
// another index is another link's.
func TestResolvedCrashRecovery(t *testing.T) {
	for _, tc := range []struct {
		name  string
		after []net.Interface
		want  string
	}{
		{"interface still there", []net.Interface{{Index: 7, Name: "ppp0"}}, "RevertLink 7"},
		{"interface gone", []net.Interface{{Index: 1, Name: "lo"}}, ""},
		{"same name, another interface", []net.Interface{{Index: 9, Name: "ppp0"}}, ""},
		{"same index, another name", []net.Interface{{Index: 7, Name: "tun3"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, f, links := resolvedHost(t)
			mustApply(t, h, office) // dies
			f.calls = nil
			links.set(tc.after...)
			if err := cleanup(h, "office"); err != nil {
				t.Fatal(err)
			}
			if got := f.String(); got != tc.want {
				t.Errorf("calls %q, want %q", got, tc.want)
			}
			if Leftovers(h.runDir, "office") {
				t.Error("state left")
			}
		})
	}
}

// When the interfaces cannot be listed or RevertLink fails, the state
// stays for another try.
func TestResolvedUndoFails(t *testing.T) {
	h, f, links := resolvedHost(t)
	s := mustApply(t, h, office)
	links.err = errors.New("netlink: interrupted")
	if err := s.Close(); err == nil || !strings.Contains(err.Error(), "looking for interface ppp0 (index 7)") {
		t.Errorf("Close: %v", err)
	}
	if !Leftovers(h.runDir, "office") {
		t.Fatal("state dropped")
	}
	if s.Backend() != BackendResolved || strings.Contains(s.String(), "not applied") {
		t.Errorf("after a failed Close: backend %q, %q; the settings are still in place", s.Backend(), s)
	}
	links.err = nil
	f.failOn = "RevertLink"
	if err := cleanup(h, "office"); err == nil || !strings.Contains(err.Error(), "systemd-resolved: RevertLink ppp0 (index 7)") {
		t.Errorf("Cleanup: %v", err)
	}
	if !Leftovers(h.runDir, "office") {
		t.Fatal("state dropped")
	}
	f.failOn = ""
	if err := cleanup(h, "office"); err != nil || !strings.HasSuffix(f.String(), "RevertLink 7") {
		t.Errorf("Cleanup: %v, calls %q", err, f.calls)
	}
}
