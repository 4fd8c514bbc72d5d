package pppssh

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// policyFrom writes body as a policy file (nil: no file) and loads it.
func policyFrom(t *testing.T, body *string) Policy {
	t.Helper()
	path := filepath.Join(t.TempDir(), "server.conf")
	if body != nil {
		if err := os.WriteFile(path, []byte(*body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p, err := LoadPolicy(path)
	if err != nil {
		t.Fatalf("loading %q: %v", *body, err)
	}
	return p
}

func str(s string) *string { return &s }

func baseRequest() Request {
	return Request{Version: 1, Link: "a", IPParam: "vpn",
		Local: netip.MustParseAddr("198.51.100.2"), Peer: netip.MustParseAddr("198.51.100.1")}
}

func TestPolicyCheck(t *testing.T) {
	const peers = "ALLOW_PEERS=198.51.100.0/24\n"
	const all = peers + "ALLOW_MASQUERADE=yes\nALLOW_FORWARDING=yes\nALLOW_NETWORKS=198.18.0.0/16\n"
	routes := func(r *Request) { r.Routes = []netip.Prefix{netip.MustParsePrefix("198.18.4.0/24")} }
	cases := []struct {
		name   string
		policy *string // nil: no file
		change func(*Request)
		want   string // "" accepted; else a part of the error
	}{
		{"plain link, no file", nil, func(r *Request) {
			r.Local, r.Peer = netip.MustParseAddr("10.9.0.1"), netip.MustParseAddr("10.9.0.2")
		}, "tunnel addresses need ALLOW_PEERS in POLICY (the file does not exist): list the range you hand out, e.g. ALLOW_PEERS=198.51.100.0/24"},
		{"documentation peer, no file", nil, nil, "tunnel addresses need ALLOW_PEERS in POLICY (the file does not exist)"},
		{"private addresses, no ALLOW_PEERS", str("ALLOW_MASQUERADE=yes\n"), func(r *Request) {
			r.Local, r.Peer = netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.9.0.2")
		}, "tunnel addresses need ALLOW_PEERS in POLICY (it does not set ALLOW_PEERS): list the range you hand out, e.g. ALLOW_PEERS=198.51.100.0/24"},
		{"public local, no ALLOW_PEERS", str("ALLOW_MASQUERADE=yes\n"), func(r *Request) {
			r.Local, r.Peer = netip.MustParseAddr("8.8.8.8"), netip.MustParseAddr("10.9.0.2")
		}, "tunnel addresses need ALLOW_PEERS in POLICY (it does not set ALLOW_PEERS)"},
		{"masquerade, no file", nil, func(r *Request) { r.Masquerade = true }, "masquerade needs ALLOW_MASQUERADE=yes in POLICY (the file does not exist)"},
		{"forwarding, no file", nil, func(r *Request) { r.Forward = true }, "reaching networks behind the server (SERVER_NETWORKS, DEFAULT_ROUTE) needs forwarding, which needs ALLOW_FORWARDING=yes in POLICY (the file does not exist)"},
		{"routes, no file", nil, routes, "routing CLIENT_NETWORKS 198.18.4.0/24 needs forwarding, which needs ALLOW_FORWARDING=yes in POLICY (the file does not exist)"},
		{"half-tunnel routes, forwarding allowed, no networks", str(peers + "ALLOW_FORWARDING=yes\n"), func(r *Request) {
			r.Routes = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/1"), netip.MustParsePrefix("128.0.0.0/1")}
		}, "routing 0.0.0.0/1 to the client needs ALLOW_NETWORKS covering it in POLICY (it does not set ALLOW_NETWORKS)"},
		{"masquerade not set", str(peers), func(r *Request) { r.Masquerade = true }, "masquerade needs ALLOW_MASQUERADE=yes in POLICY (it does not set ALLOW_MASQUERADE)"},
		{"masquerade no", str(all + "ALLOW_MASQUERADE=no\n"), func(r *Request) { r.Masquerade = true }, "masquerade needs ALLOW_MASQUERADE=yes in POLICY (it says ALLOW_MASQUERADE=no)"},
		{"masquerade under ALLOW_FORWARDING=no", str(all + "ALLOW_FORWARDING=no\n"), func(r *Request) { r.Masquerade = true }, "masquerade needs forwarding, which needs ALLOW_FORWARDING=yes in POLICY (it says ALLOW_FORWARDING=no)"},
		{"routes under ALLOW_FORWARDING=no", str(all + "ALLOW_FORWARDING=no\n"), routes, "routing CLIENT_NETWORKS 198.18.4.0/24 needs forwarding, which needs ALLOW_FORWARDING=yes in POLICY (it says ALLOW_FORWARDING=no)"},
		{"forward under ALLOW_FORWARDING=no", str(all + "ALLOW_FORWARDING=no\n"), func(r *Request) { r.Forward = true }, "ALLOW_FORWARDING=no"},
		{"network inside", str(all), routes, ""},
		{"everything inside", str(all), func(r *Request) { routes(r); r.Masquerade, r.Forward = true, true }, ""},
		{"network outside", str(all), func(r *Request) { r.Routes = []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")} }, "routing 203.0.113.0/24 to the client needs ALLOW_NETWORKS covering it in POLICY (it says ALLOW_NETWORKS=198.18.0.0/16)"},
		{"network wider than allowed", str(all), func(r *Request) { r.Routes = []netip.Prefix{netip.MustParsePrefix("198.0.0.0/8")} }, "routing 198.0.0.0/8"},
		{"ALLOW_NETWORKS empty", str(peers + "ALLOW_FORWARDING=yes\nALLOW_NETWORKS=\n"), routes, "(it says ALLOW_NETWORKS=)"},
		{"peer outside ALLOW_PEERS", str(all), func(r *Request) { r.Peer = netip.MustParseAddr("198.18.0.9") }, "peer 198.18.0.9 is outside ALLOW_PEERS=198.51.100.0/24 in POLICY"},
		{"local outside ALLOW_PEERS", str(all), func(r *Request) { r.Local = netip.MustParseAddr("10.0.0.1") }, "local 10.0.0.1 is outside ALLOW_PEERS=198.51.100.0/24 in POLICY"},
		{"ALLOW_PEERS may allow public addresses", str("ALLOW_PEERS=203.0.113.0/24\n"), func(r *Request) {
			r.Local, r.Peer = netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("203.0.113.2")
		}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := policyFrom(t, c.policy)
			r := baseRequest()
			if c.change != nil {
				c.change(&r)
			}
			if err := r.Validate(); err != nil {
				t.Fatalf("the test's request is invalid: %v", err)
			}
			err := p.Check(r)
			want := strings.ReplaceAll(c.want, "POLICY", p.Path())
			switch {
			case c.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case c.want != "" && err == nil:
				t.Errorf("accepted, want %q", want)
			case c.want != "" && !strings.Contains(err.Error(), want):
				t.Errorf("error %q\nwant it to contain %q", err, want)
			}
		})
	}
}

func TestLoadPolicyRefusesBadValues(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{"ALLOW_EVERYTHING=yes\n", ":1: ALLOW_EVERYTHING: unknown key"},
		{"ALLOW_PEERS=\n", ":1: ALLOW_PEERS: empty value"},
		{"ALLOW_PEERS=198.51.100.1/24\n", "host bits set"},
		{"MAX_SESSIONS=0\n", ":1: MAX_SESSIONS: \"0\": use a number from 1 to 1024"},
		{"\nMAX_SESSIONS=5000\n", ":2: MAX_SESSIONS"},
		{"MAX_SESSIONS=lots\n", "MAX_SESSIONS"},
		{"MAX_SESSIONS_PER_ACCOUNT=0\n", ":1: MAX_SESSIONS_PER_ACCOUNT: \"0\": use a number from 1 to MAX_SESSIONS"},
		{"MAX_SESSIONS=4\nMAX_SESSIONS_PER_ACCOUNT=5\n", ":2: MAX_SESSIONS_PER_ACCOUNT: 5 is more than MAX_SESSIONS=4"},
		{"MAX_SESSIONS_PER_ACCOUNT=65\n", ":1: MAX_SESSIONS_PER_ACCOUNT: 65 is more than MAX_SESSIONS=64"},
		{"OFFER_DNS=2001:db8::53\n", ":1: OFFER_DNS: \"2001:db8::53\" is not an IPv4 unicast address"},
		{"OFFER_DNS=203.0.113.53;reboot\n", "OFFER_DNS"},
		{"OFFER_DNS=203.0.113.1,203.0.113.2,203.0.113.3\n", "OFFER_DNS: at most two name servers"},
		{"PPPD_RESTARTS=-1\n", ":1: PPPD_RESTARTS: \"-1\": use a number from 0 (never) to 100"},
		{"PPPD_RESTARTS=101\n", "PPPD_RESTARTS"},
		{"PPPD_RESTARTS=yes\n", "PPPD_RESTARTS"},
	} {
		path := filepath.Join(t.TempDir(), "server.conf")
		if err := os.WriteFile(path, []byte(c.body), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := LoadPolicy(path)
		var ce *ConfigError
		if err == nil || !errors.As(err, &ce) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want a ConfigError with %q", c.body, err, c.want)
		}
	}
	p := policyFrom(t, str("MAX_SESSIONS=3\nPPPD=/opt/pppd\nOFFER_DNS=\"203.0.113.53, 203.0.113.54\"\n"))
	if p.MaxSessions != 3 || p.PPPD != "/opt/pppd" || len(p.OfferDNS) != 2 || p.OfferDNS[1] != netip.MustParseAddr("203.0.113.54") {
		t.Errorf("MAX_SESSIONS/PPPD not read: %+v", p)
	}
	if p := policyFrom(t, nil); p.MaxSessions != DefaultMaxSessions || p.MaxSessionsPerAccount != 8 || p.PPPD != Defaults().ServerPPPD ||
		p.PPPDRestarts != 5 {
		t.Errorf("defaults: %+v", p)
	}
	if p := policyFrom(t, str("PPPD_RESTARTS=0\n")); p.PPPDRestarts != 0 {
		t.Errorf("PPPD_RESTARTS=0 read as %d", p.PPPDRestarts)
	}
	for _, c := range []struct {
		body string
		want int
	}{
		{"ALLOW_PEERS=198.51.100.0/24\n", 8},
		{"MAX_SESSIONS=3\n", 3}, // the default, bounded by MAX_SESSIONS
		{"MAX_SESSIONS=100\nMAX_SESSIONS_PER_ACCOUNT=100\n", 100},
		{"MAX_SESSIONS_PER_ACCOUNT=1\n", 1},
	} {
		if p := policyFrom(t, str(c.body)); p.MaxSessionsPerAccount != c.want {
			t.Errorf("%q: MAX_SESSIONS_PER_ACCOUNT %d, want %d", c.body, p.MaxSessionsPerAccount, c.want)
		}
	}
}

// fakeHost is a server's addresses and main routing table.
type fakeHost struct {
	addr   []hostAddr
	route  []hostRoute
	err    error
	listed int
}

func (f *fakeHost) addrs() ([]hostAddr, error)   { f.listed++; return f.addr, f.err }
func (f *fakeHost) routes() ([]hostRoute, error) { return f.route, nil }

func TestCheckHost(t *testing.T) {
	host := &fakeHost{
		addr: []hostAddr{
			{netip.MustParseAddr("127.0.0.1"), "lo", false},
			{netip.MustParseAddr("192.0.2.2"), "eth0", false},
			{netip.MustParseAddr("10.1.0.1"), "eth1", false},
			{netip.MustParseAddr("198.51.100.6"), "ppp1", true},
		},
		route: []hostRoute{
			{Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("192.0.2.254"), Iface: "eth0"},
			{Dst: netip.MustParsePrefix("0.0.0.0/1"), Iface: "tun9"},
			{Dst: netip.MustParsePrefix("128.0.0.0/1"), Iface: "tun9"},
			{Dst: netip.MustParsePrefix("192.0.2.0/24"), Iface: "eth0"},
			{Dst: netip.MustParsePrefix("10.1.0.0/16"), Iface: "eth1"},
			{Dst: netip.MustParsePrefix("10.53.0.53/32"), Via: netip.MustParseAddr("10.1.0.254"), Iface: "eth1"},
			{Dst: netip.MustParsePrefix("198.51.100.5/32"), Iface: "ppp1", PPP: true},
			{Dst: netip.MustParsePrefix("198.19.0.0/24"), Iface: "ppp1", PPP: true},
		},
	}
	p := policyFrom(t, nil)
	for _, c := range []struct {
		name   string
		change func(*Request)
		want   string
	}{
		{"free addresses", nil, ""},
		{"free network", func(r *Request) { r.Routes = []netip.Prefix{netip.MustParsePrefix("198.18.0.0/24")} }, ""},
		{"peer on an interface", func(r *Request) { r.Peer = netip.MustParseAddr("192.0.2.2") }, "peer 192.0.2.2 is an address of this server (eth0)"},
		{"local on an interface", func(r *Request) { r.Local = netip.MustParseAddr("10.1.0.1") }, "local 10.1.0.1 is an address of this server (eth1)"},
		{"local of another link", func(r *Request) { r.Local = netip.MustParseAddr("198.51.100.6") }, "local 198.51.100.6 is in use by another link on this server"},
		{"peer in a LAN", func(r *Request) { r.Peer = netip.MustParseAddr("10.1.0.5") }, "route 10.1.0.0/16 dev eth1 already covers peer 10.1.0.5"},
		{"peer is a host route (the resolver)", func(r *Request) { r.Peer = netip.MustParseAddr("10.53.0.53") }, "route 10.53.0.53/32 via 10.1.0.254 dev eth1 already covers peer 10.53.0.53"},
		{"local in a LAN", func(r *Request) { r.Local = netip.MustParseAddr("192.0.2.77") }, "route 192.0.2.0/24 dev eth0 already covers local 192.0.2.77"},
		{"peer of another link", func(r *Request) { r.Peer = netip.MustParseAddr("198.51.100.5") }, "peer 198.51.100.5 is in use by another link on this server"},
		{"network over another link's network", func(r *Request) { r.Routes = []netip.Prefix{netip.MustParsePrefix("198.19.0.0/16")} }, "network 198.19.0.0/16 overlaps a route of another link on this server"},
		{"network inside a route", func(r *Request) { r.Routes = []netip.Prefix{netip.MustParsePrefix("10.1.2.0/24")} }, "route 10.1.0.0/16 dev eth1 overlaps network 10.1.2.0/24"},
		{"network around a route", func(r *Request) { r.Routes = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")} }, "network 10.0.0.0/8 contains 10.1.0.1, an address of this server (eth1)"},
		{"network around another link", func(r *Request) { r.Routes = []netip.Prefix{netip.MustParsePrefix("198.51.100.4/30")} }, "network 198.51.100.4/30 contains an address of another link on this server"},
		{"network equal to a route", func(r *Request) { r.Routes = []netip.Prefix{netip.MustParsePrefix("10.53.0.53/32")} }, "route 10.53.0.53/32 via 10.1.0.254 dev eth1 overlaps network 10.53.0.53/32"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := baseRequest()
			if c.change != nil {
				c.change(&r)
			}
			err := p.checkHost(r, host)
			// Another link's addresses and networks are never named,
			// unless the request itself names them.
			if err != nil {
				for _, theirs := range []string{"198.51.100.6", "198.51.100.5", "198.19.0.0/24", "ppp1"} {
					if strings.Contains(err.Error(), theirs) && !strings.Contains(fmt.Sprint(r), theirs) {
						t.Errorf("%v names another link's %s", err, theirs)
					}
				}
			}
			switch {
			case c.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("error %v\nwant %q", err, c.want)
			}
		})
	}
	broken := &fakeHost{err: errors.New("netlink: boom")}
	if err := p.checkHost(baseRequest(), broken); err == nil || !strings.Contains(err.Error(), "listing the server's addresses: netlink: boom") {
		t.Errorf("a failed look-up must refuse: %v", err)
	}
}
