package routing

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/vpn-pppssh/vpn-pppssh/routing/firewall"
)

// fakeHost keeps the host's state in memory and prints it as text.
type fakeHost struct {
	routes   []string
	masq     []string
	forward  string
	rp       map[string]string // interface: rp_filter
	index    map[string]int    // interface: its index
	failOn   string            // a change whose String() contains this fails
	ns       uint64
	noIPv6   bool // the kernel has no IPv6
	forward6 string
	checks   []string          // IPv6 source checks: "link iface"
	ifaceFwd map[string]string // IPv4 per-interface forwarding; setForwarding sets them all, as the kernel does
}

func (f *fakeHost) fail(what string) error {
	if f.failOn != "" && strings.Contains(what, f.failOn) {
		return fmt.Errorf("injected failure: %s", what)
	}
	return nil
}

func (f *fakeHost) addRoute(r Route) error {
	if err := f.fail("add " + r.String()); err != nil {
		return err
	}
	if slices.Contains(f.routes, r.String()) {
		return errors.New("file exists")
	}
	f.routes = append(f.routes, r.String())
	return nil
}

func (f *fakeHost) delRoute(r Route) error {
	if err := f.fail("del " + r.String()); err != nil {
		return err
	}
	f.routes = slices.DeleteFunc(f.routes, func(s string) bool { return s == r.String() })
	return nil
}

func (f *fakeHost) routeTo(a netip.Addr) (Route, error) {
	return Route{Gw: netip.MustParseAddr("192.0.2.254"), Dev: "eth0"}, nil
}

func (f *fakeHost) forwarding(family int) (string, error) {
	if family == 6 {
		return f.forward6, nil
	}
	return f.forward, nil
}
func (f *fakeHost) hasIPv6() bool { return !f.noIPv6 }
func (f *fakeHost) ifaceForwarding(family int) (map[string]string, error) {
	if family == 6 {
		return map[string]string{}, nil
	}
	return maps.Clone(f.ifaceFwd), nil
}
func (f *fakeHost) setIfaceForwarding(family int, iface, v string) error {
	if family != 6 {
		f.ifaceFwd[iface] = v
	}
	return nil
}
func (f *fakeHost) addSourceCheck(c firewall.SourceCheck) error {
	if err := f.fail("sourcecheck " + c.Iface); err != nil {
		return err
	}
	f.checks = append(f.checks, c.Link+" "+c.Iface)
	return nil
}
func (f *fakeHost) delSourceCheck(c firewall.SourceCheck) error {
	f.checks = slices.DeleteFunc(f.checks, func(s string) bool { return s == c.Link+" "+c.Iface })
	return nil
}
func (f *fakeHost) setForwarding(family int, v string) error {
	if family == 6 {
		f.forward6 = v
		return nil
	}
	if err := f.fail("forwarding " + v); err != nil {
		return err
	}
	f.forward = v
	for k := range f.ifaceFwd {
		f.ifaceFwd[k] = v
	}
	return nil
}

func (f *fakeHost) linkIndex(iface string) (int, error) {
	if _, ok := f.rp[iface]; !ok {
		return 0, fs.ErrNotExist
	}
	return f.index[iface], nil
}

func (f *fakeHost) rpFilter(iface string) (string, error) {
	v, ok := f.rp[iface]
	if !ok {
		return "", fs.ErrNotExist
	}
	return v, nil
}

func (f *fakeHost) setRPFilter(iface, v string) error {
	if err := f.fail("rp_filter " + iface + " " + v); err != nil {
		return err
	}
	if _, ok := f.rp[iface]; !ok {
		return fs.ErrNotExist
	}
	f.rp[iface] = v
	return nil
}

func masqString(m firewall.Masquerade) string {
	return fmt.Sprintf("masq %s %s !%s", m.Link, m.Source, m.NotOut)
}

func (f *fakeHost) addMasquerade(m firewall.Masquerade) error {
	if err := f.fail("add " + masqString(m)); err != nil {
		return err
	}
	f.masq = append(f.masq, masqString(m))
	return nil
}

func (f *fakeHost) delMasquerade(m firewall.Masquerade) error {
	f.masq = slices.DeleteFunc(f.masq, func(s string) bool { return s == masqString(m) })
	return nil
}

func (f *fakeHost) firewallName() string { return "fake" }
func (f *fakeHost) netns() uint64        { return f.ns }

func (f *fakeHost) String() string {
	r := slices.Clone(f.routes)
	slices.Sort(r)
	m := slices.Clone(f.masq)
	slices.Sort(m)
	out := fmt.Sprintf("forward=%s routes=[%s] masq=[%s]", f.forward, strings.Join(r, "; "), strings.Join(m, "; "))
	if f.forward6 != "" {
		out += " forward6=" + f.forward6
	}
	if len(f.checks) > 0 {
		out += " checks=[" + strings.Join(f.checks, "; ") + "]"
	}
	return out
}

func prefixes(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range s {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}

const clean = "forward=0 routes=[] masq=[]"

func TestRouterSequence(t *testing.T) {
	carrier := netip.MustParseAddr("192.0.2.2")
	steps := []struct {
		name string
		cfg  Config
		want string
	}{
		{"networks", Config{Iface: "ppp0", Networks: prefixes("203.0.113.0/24")},
			"forward=0 routes=[203.0.113.0/24 dev ppp0] masq=[]"},
		{"same again", Config{Iface: "ppp0", Networks: prefixes("203.0.113.0/24")},
			"forward=0 routes=[203.0.113.0/24 dev ppp0] masq=[]"},
		{"masquerade and forwarding", Config{Iface: "ppp0", Networks: prefixes("203.0.113.0/24"), Forwarding: true,
			Masquerade: prefixes("198.51.100.2/32")},
			"forward=1 routes=[203.0.113.0/24 dev ppp0] masq=[masq vpn 198.51.100.2/32 !ppp0]"},
		{"change network", Config{Iface: "ppp0", Networks: prefixes("198.18.0.0/15"), Forwarding: true,
			Masquerade: prefixes("198.51.100.2/32")},
			"forward=1 routes=[198.18.0.0/15 dev ppp0] masq=[masq vpn 198.51.100.2/32 !ppp0]"},
		{"default route", Config{Iface: "ppp0", DefaultRoute: true, Carrier: carrier},
			"forward=0 routes=[0.0.0.0/1 dev ppp0; 128.0.0.0/1 dev ppp0; 192.0.2.2/32 via 192.0.2.254 dev eth0; unreachable 8000::/1; unreachable ::/1] masq=[]"},
		{"default route again", Config{Iface: "ppp0", DefaultRoute: true, Carrier: carrier},
			"forward=0 routes=[0.0.0.0/1 dev ppp0; 128.0.0.0/1 dev ppp0; 192.0.2.2/32 via 192.0.2.254 dev eth0; unreachable 8000::/1; unreachable ::/1] masq=[]"},
		{"default route, an SSH server on IPv6", Config{Iface: "ppp0", DefaultRoute: true, Carrier: netip.MustParseAddr("2001:db8::2")},
			"forward=0 routes=[0.0.0.0/1 dev ppp0; 128.0.0.0/1 dev ppp0; 2001:db8::2/128 via 192.0.2.254 dev eth0; unreachable 8000::/1; unreachable ::/1] masq=[]"},
		{"nothing", Config{Iface: "ppp0"}, clean},
	}
	dir := t.TempDir()
	h := &fakeHost{forward: "0"}
	r, err := newRouter("vpn", dir, h)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range steps {
		if err := r.Set(s.cfg); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := h.String(); got != s.want {
			t.Errorf("%s:\n got %s\nwant %s", s.name, got, s.want)
		}
		// The journal on disk says the same as the router.
		j, err := OpenJournal(JournalPath(dir, "vpn"))
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if len(j.changes) != len(r.j.changes) {
			t.Errorf("%s: journal has %d changes, router %d", s.name, len(j.changes), len(r.j.changes))
		}
	}
	mustSet(t, r, Config{Iface: "ppp0", Networks: prefixes("203.0.113.0/24"), Forwarding: true, Masquerade: prefixes("198.51.100.2/32")})
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if got := h.String(); got != clean {
		t.Errorf("after Close: %s", got)
	}
	if _, err := os.Stat(JournalPath(dir, "vpn")); !os.IsNotExist(err) {
		t.Errorf("journal left after Close: %v", err)
	}
}

// Without IPv6 in the kernel there is nothing to block, and a default
// route does not fail for want of it.
func TestDefaultRouteWithoutIPv6(t *testing.T) {
	h := &fakeHost{forward: "0", noIPv6: true}
	r, err := newRouter("vpn", t.TempDir(), h)
	if err != nil {
		t.Fatal(err)
	}
	mustSet(t, r, Config{Iface: "ppp0", DefaultRoute: true, Carrier: netip.MustParseAddr("192.0.2.2")})
	if got, want := h.String(), "forward=0 routes=[0.0.0.0/1 dev ppp0; 128.0.0.0/1 dev ppp0; 192.0.2.2/32 via 192.0.2.254 dev eth0] masq=[]"; got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
	if err := r.Close(); err != nil || h.String() != clean {
		t.Fatalf("Close: %v, %s", err, h.String())
	}
}

// A new Router (the next process) undoes what a dead one recorded.
func TestRouterUndoesLeftovers(t *testing.T) {
	dir := t.TempDir()
	h := &fakeHost{forward: "0"}
	r := mustRouter(t, "vpn", dir, h)
	if err := r.Set(Config{Iface: "ppp0", Networks: prefixes("203.0.113.0/24"), Forwarding: true}); err != nil {
		t.Fatal(err)
	}
	// The process dies here; another one finds the journal.
	if !Leftovers(dir, "vpn") {
		t.Fatal("no leftovers reported")
	}
	r2 := mustRouter(t, "vpn", dir, h)
	if err := r2.Close(); err != nil {
		t.Fatal(err)
	}
	if got := h.String(); got != clean {
		t.Errorf("after cleanup: %s", got)
	}
}

// Undo goes on past a failure and keeps the failed change for later.
func TestRouterCloseGoesOnPastFailures(t *testing.T) {
	dir := t.TempDir()
	h := &fakeHost{forward: "0"}
	r := mustRouter(t, "vpn", dir, h)
	mustSet(t, r, Config{Iface: "ppp0", Networks: prefixes("203.0.113.0/24", "198.18.0.0/15"), Forwarding: true})
	h.failOn = "del 203.0.113.0/24"
	err := r.Close()
	if err == nil || !strings.Contains(err.Error(), "removing route 203.0.113.0/24 dev ppp0") {
		t.Fatalf("Close: %v", err)
	}
	if got, want := h.String(), "forward=0 routes=[203.0.113.0/24 dev ppp0] masq=[]"; got != want {
		t.Errorf("after failed Close:\n got %s\nwant %s", got, want)
	}
	h.failOn = ""
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if got := h.String(); got != clean {
		t.Errorf("after second Close: %s", got)
	}
}

// A failure while applying leaves what was done recorded, so Close undoes it.
func TestRouterApplyFailureIsUndoable(t *testing.T) {
	h := &fakeHost{forward: "0", failOn: "add 198.18.0.0/15"}
	r := mustRouter(t, "vpn", t.TempDir(), h)
	err := r.Set(Config{Iface: "ppp0", Networks: prefixes("203.0.113.0/24", "198.18.0.0/15"), Forwarding: true})
	if err == nil || !strings.Contains(err.Error(), "adding route 198.18.0.0/15 dev ppp0: injected failure") {
		t.Fatalf("Set: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if got := h.String(); got != clean {
		t.Errorf("after Close: %s", got)
	}
}

// Two links share forwarding: the last one out restores the original.
func TestForwardingSharedBetweenLinks(t *testing.T) {
	dir := t.TempDir()
	h := &fakeHost{forward: "0"}
	a := mustRouter(t, "a", dir, h)
	b := mustRouter(t, "b", dir, h)
	mustSet(t, a, Config{Iface: "ppp0", Forwarding: true})
	mustSet(t, b, Config{Iface: "ppp1", Forwarding: true})
	mustClose(t, a)
	if h.forward != "1" {
		t.Errorf("forwarding turned off while link b still needs it")
	}
	mustClose(t, b)
	if h.forward != "0" {
		t.Errorf("forwarding = %s after both links, want the original 0", h.forward)
	}
}

// Forwarding is per network namespace: a link in another one does not
// keep ours on.
func TestForwardingIsPerNamespace(t *testing.T) {
	dir := t.TempDir()
	here, there := &fakeHost{forward: "0", ns: 1}, &fakeHost{forward: "0", ns: 2}
	a := mustRouter(t, "a", dir, here)
	b := mustRouter(t, "b", dir, there)
	mustSet(t, a, Config{Iface: "ppp0", Forwarding: true})
	mustSet(t, b, Config{Iface: "ppp1", Forwarding: true})
	mustClose(t, a)
	if here.forward != "0" {
		t.Errorf("forwarding left on in namespace 1 because of a link in namespace 2")
	}
	mustClose(t, b)
	if there.forward != "0" {
		t.Errorf("namespace 2: forwarding = %s", there.forward)
	}
}

func mustRouter(t *testing.T, link, dir string, h host) *Router {
	t.Helper()
	r, err := newRouter(link, dir, h)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustSet(t *testing.T, r *Router, cfg Config) {
	t.Helper()
	if err := r.Set(cfg); err != nil {
		t.Fatalf("Set(%+v): %v", cfg, err)
	}
}

func mustClose(t *testing.T, r *Router) {
	t.Helper()
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// A link that carries IPv6: its networks and the default route for both
// families go through the link (via the far end on a shared subnet), IPv6
// sources are checked by a firewall rule, IPv6 forwarding is its own
// switch, and Close gives everything back.
func TestRouterIPv6(t *testing.T) {
	h := &fakeHost{forward: "0", forward6: "0", rp: map[string]string{"tap0": "0"}, index: map[string]int{"tap0": 4}}
	r, err := newRouter("vpn", t.TempDir(), h)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Iface: "tap0", IPv6: true, SourceCheck: true, Forwarding6: true, DefaultRoute: true,
		Carrier: netip.MustParseAddr("2001:db8:9::1"), Gateway: netip.MustParseAddr("198.51.100.2"), Gateway6: netip.MustParseAddr("2001:db8:6::1"),
		Networks: prefixes("203.0.113.0/24", "2001:db8:2::/48"), Masquerade: prefixes("2001:db8:6::1/128")}
	if err := r.Set(cfg); err != nil {
		t.Fatal(err)
	}
	want := "forward=0 routes=[0.0.0.0/1 via 198.51.100.2 dev tap0; 128.0.0.0/1 via 198.51.100.2 dev tap0; " +
		"2001:db8:2::/48 via 2001:db8:6::1 dev tap0; 2001:db8:9::1/128 via 192.0.2.254 dev eth0; " +
		"203.0.113.0/24 via 198.51.100.2 dev tap0; 8000::/1 via 2001:db8:6::1 dev tap0; ::/1 via 2001:db8:6::1 dev tap0] " +
		"masq=[masq vpn 2001:db8:6::1/128 !tap0] forward6=1 checks=[vpn tap0]"
	if got := h.String(); got != want {
		t.Fatalf("after Set:\n got %s\nwant %s", got, want)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := h.String(), "forward=0 routes=[] masq=[] forward6=0"; got != want {
		t.Fatalf("after Close: %s, want %s", got, want)
	}
}

// Setting "all" sets every interface's forwarding, both ways (the
// kernel's rule): an admin's per-interface setting that differed is put
// back after "all" at Close, also when another link was last out.
func TestForwardingKeepsPerInterfaceSettings(t *testing.T) {
	h := &fakeHost{forward: "0", ifaceFwd: map[string]string{"default": "0", "eth0": "0", "eth1": "1"}}
	dir := t.TempDir()
	a, err := newRouter("a", dir, h)
	if err != nil {
		t.Fatal(err)
	}
	b, err := newRouter("b", dir, h)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*Router{a, b} {
		if err := r.Set(Config{Iface: "ppp0", Forwarding: true}); err != nil {
			t.Fatal(err)
		}
	}
	if h.ifaceFwd["eth0"] != "1" || h.forward != "1" {
		t.Fatalf("forwarding not on: %v %v", h.forward, h.ifaceFwd)
	}
	for _, r := range []*Router{a, b} {
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if got := fmt.Sprint(h.forward, " ", h.ifaceFwd); got != "0 map[default:0 eth0:0 eth1:1]" {
		t.Errorf("after both links: %s, want 0 map[default:0 eth0:0 eth1:1]", got)
	}
}
