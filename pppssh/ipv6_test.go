package pppssh

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestConfigIPv6(t *testing.T) {
	const base = "SERVER_HOSTNAME=vpn.example.org\nSERVER_IFIPADDR=198.51.100.2\nCLIENT_IFIPADDR=198.51.100.1\n"
	const helper = "SERVER_HELPER=/usr/local/sbin/vpn-pppssh\n"
	const pair = "SERVER_IFIP6ADDR=2001:db8:6::1\nCLIENT_IFIP6ADDR=2001:db8:6::2\n"
	for _, c := range []struct {
		name, file, want string // want: "" valid, else a part of the error
	}{
		{"ppp with the helper", base + helper + pair, ""},
		{"ppp without the helper", base + pair, "IPv6 in MODE=ppp needs SERVER_HELPER"},
		{"tun through OpenSSH", base + "MODE=tun\n" + pair, ""},
		{"ethernet with a /64", base + "MODE=ethernet\nSERVER_IFIPADDR=198.51.100.2/24\nCLIENT_IFIPADDR=198.51.100.1/24\nSERVER_IFIP6ADDR=2001:db8:6::1/64\nCLIENT_IFIP6ADDR=2001:db8:6::2/64\n", ""},
		{"ethernet, two subnets", base + "MODE=ethernet\nSERVER_IFIP6ADDR=2001:db8:6::1/64\nCLIENT_IFIP6ADDR=2001:db8:7::2/64\n", "are not in one subnet"},
		{"a prefix length in tun mode", base + "MODE=tun\nSERVER_IFIP6ADDR=2001:db8:6::1/64\nCLIENT_IFIP6ADDR=2001:db8:6::2\n", "applies to MODE=ethernet"},
		{"one end only", base + helper + "CLIENT_IFIP6ADDR=2001:db8:6::2\n", "CLIENT_IFIP6ADDR needs SERVER_IFIP6ADDR"},
		{"the helper without the client's", base + "MODE=ethernet\nCLIENT_BRIDGE=br0\n" + helper + "SERVER_IFIP6ADDR=2001:db8:6::1/64\n", "CLIENT_IFIP6ADDR is needed with SERVER_HELPER"},
		{"the same address", base + helper + "SERVER_IFIP6ADDR=2001:db8:6::1\nCLIENT_IFIP6ADDR=2001:db8:6::1\n", "both 2001:db8:6::1"},
		{"IPv6 network without IPv6", base + "SERVER_NETWORKS=2001:db8:2::/64\n", "network 2001:db8:2::/64 is IPv6: set CLIENT_IFIP6ADDR and SERVER_IFIP6ADDR"},
		{"IPv6 network with IPv6", base + helper + pair + "SERVER_NETWORKS=203.0.113.0/24,2001:db8:2::/64\nCLIENT_NETWORKS=2001:db8:3::/64\n", ""},
		{"forwards only", "SERVER_HOSTNAME=h\nMODE=none\nLOCAL_FORWARDS=1:h:2\nCLIENT_IFIP6ADDR=2001:db8:6::2\n", "CLIENT_IFIP6ADDR needs a tunnel"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := Defaults()
			_, err := cfg.Parse("vpn.conf", []byte(c.file))
			if err == nil {
				err = cfg.Validate()
			}
			switch {
			case c.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("error %v, want %q", err, c.want)
			}
		})
	}
	for _, bad := range []string{"fe80::1", "::1", "ff02::1", "::", "::ffff:192.0.2.1", "198.51.100.1", "2001:db8::1%eth0", "2001:db8::1/127", "x"} {
		cfg := Defaults()
		if err := cfg.Set("CLIENT_IFIP6ADDR", bad); err == nil {
			t.Errorf("CLIENT_IFIP6ADDR=%s accepted", bad)
		}
	}
}

// The request carries the IPv6 pair, and the server's pppd is told to
// negotiate IPV6CP, or not to.
func TestRequestIPv6(t *testing.T) {
	cfg := Defaults()
	if _, err := cfg.Parse("f", []byte("SERVER_HOSTNAME=h\nSERVER_IFIPADDR=198.51.100.2\nCLIENT_IFIPADDR=198.51.100.1\nSERVER_HELPER=/usr/local/sbin/vpn-pppssh\n"+
		"SERVER_IFIP6ADDR=2001:db8:6::1\nCLIENT_IFIP6ADDR=2001:db8:6::2\nCLIENT_NETWORKS=2001:db8:3::/64\nSERVER_NETWORKS=2001:db8:2::/64\n")); err != nil {
		t.Fatal(err)
	}
	r := cfg.ServerRequest()
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	if r.Local6 != netip.MustParseAddr("2001:db8:6::1") || r.Peer6 != netip.MustParseAddr("2001:db8:6::2") || !r.CarriesIPv6() {
		t.Errorf("request %+v", r)
	}
	args := ServerPPPDArgs(r)
	if !slices.Contains(args, "+ipv6") || !slices.Contains(args, "ipv6cp-use-ipaddr") || slices.Contains(args, "noipv6") {
		t.Errorf("server pppd args with IPv6: %q", args)
	}
	if local := cfg.localPPPDArgs("/dev/pts/3"); !slices.Contains(local, "+ipv6") {
		t.Errorf("local pppd args with IPv6: %q", local)
	}
	want := []netip.Prefix{netip.MustParsePrefix("198.51.100.2/32"), netip.MustParsePrefix("198.51.100.1/32"),
		netip.MustParsePrefix("2001:db8:6::1/128"), netip.MustParsePrefix("2001:db8:6::2/128"), netip.MustParsePrefix("2001:db8:3::/64")}
	if got := r.Claims(); !slices.Equal(got, want) {
		t.Errorf("claims %v, want %v", got, want)
	}
	if r.Forward || !r.Forward6 {
		t.Errorf("no IPv4 network but an IPv6 one behind the server: forward %v, forward6 %v", r.Forward, r.Forward6)
	}
	if args := ServerPPPDArgs(baseRequest()); !slices.Contains(args, "noipv6") || slices.Contains(args, "+ipv6") {
		t.Errorf("server pppd args without IPv6: %q", args)
	}

	v6 := func(change func(*Request)) Request {
		r := baseRequest()
		r.Local6, r.Peer6 = netip.MustParseAddr("2001:db8:6::1"), netip.MustParseAddr("2001:db8:6::2")
		change(&r)
		return r
	}
	for _, c := range []struct {
		name string
		r    Request
		want string
	}{
		{"IPv6 network without IPv6", func() Request {
			r := baseRequest()
			r.Routes = []netip.Prefix{netip.MustParsePrefix("2001:db8:3::/64")}
			return r
		}(), "bad network 2001:db8:3::/64"},
		{"peer only", v6(func(r *Request) { r.Local6 = netip.Addr{} }), "IPv6 address"},
		{"link-local", v6(func(r *Request) { r.Peer6 = netip.MustParseAddr("fe80::2") }), "cannot be the IPv6 address of a link"},
		{"the same", v6(func(r *Request) { r.Peer6 = r.Local6 }), "the same IPv6 address"},
		{"bits6 in ppp", v6(func(r *Request) { r.Bits6 = 64 }), "bits6 is for mode ethernet"},
		{"IPv4 in the IPv6 field", v6(func(r *Request) { r.Peer6 = netip.MustParseAddr("198.51.100.9") }), "not an IPv6 address"},
		{"ethernet, two subnets", v6(func(r *Request) {
			r.Mode, r.Bits, r.Bits6 = ModeEthernet, 24, 64
			r.Peer6 = netip.MustParseAddr("2001:db8:7::2")
		}), "not in one subnet"},
	} {
		if err := c.r.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

func TestPolicyCheckIPv6(t *testing.T) {
	const all = "ALLOW_PEERS=198.51.100.0/24,2001:db8:6::/64\nALLOW_FORWARDING=yes\nALLOW_MASQUERADE=yes\nALLOW_NETWORKS=198.18.0.0/16,2001:db8:3::/48\n"
	v6 := func(change func(*Request)) Request {
		r := baseRequest()
		r.Local6, r.Peer6 = netip.MustParseAddr("2001:db8:6::1"), netip.MustParseAddr("2001:db8:6::2")
		if change != nil {
			change(&r)
		}
		return r
	}
	for _, c := range []struct {
		name   string
		policy string
		r      Request
		want   string
	}{
		{"inside", all, v6(nil), ""},
		{"network inside", all, v6(func(r *Request) { r.Routes = []netip.Prefix{netip.MustParsePrefix("2001:db8:3:1::/64")} }), ""},
		{"no IPv6 range", "ALLOW_PEERS=198.51.100.0/24\n", v6(nil), "peer 2001:db8:6::2 is outside ALLOW_PEERS=198.51.100.0/24 in POLICY"},
		{"local outside", all, v6(func(r *Request) { r.Local6 = netip.MustParseAddr("2001:db8:9::1") }), "local 2001:db8:9::1 is outside ALLOW_PEERS"},
		{"network outside", all, v6(func(r *Request) { r.Routes = []netip.Prefix{netip.MustParsePrefix("2001:db8:4::/64")} }),
			"routing 2001:db8:4::/64 to the client needs ALLOW_NETWORKS covering it in POLICY"},
		{"ethernet subnet wider than allowed", all, v6(func(r *Request) { r.Mode, r.Bits, r.Bits6 = ModeEthernet, 24, 48 }),
			"subnet 2001:db8:6::/48 is outside ALLOW_PEERS"},
		{"IPv4 only, under an IPv6 policy", all, baseRequest(), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := policyFrom(t, &c.policy)
			if err := c.r.Validate(); err != nil {
				t.Fatalf("the test's request is invalid: %v", err)
			}
			err := p.Check(c.r)
			want := strings.ReplaceAll(c.want, "POLICY", p.Path())
			switch {
			case c.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), want)):
				t.Errorf("error %v, want %q", err, want)
			}
		})
	}
}

func TestCheckHostIPv6(t *testing.T) {
	host := &fakeHost{
		addr: []hostAddr{
			{netip.MustParseAddr("192.0.2.2"), "eth0", false},
			{netip.MustParseAddr("2001:db8:1::2"), "eth0", false},
			{netip.MustParseAddr("2001:db8:6::11"), "ppp1", true},
		},
		route: []hostRoute{
			{Dst: netip.MustParsePrefix("::/0"), Via: netip.MustParseAddr("2001:db8:1::1"), Iface: "eth0"},
			{Dst: netip.MustParsePrefix("::/1"), Iface: "tun9"},
			{Dst: netip.MustParsePrefix("8000::/1"), Iface: "tun9"},
			{Dst: netip.MustParsePrefix("2001:db8:1::/64"), Iface: "eth0"},
			{Dst: netip.MustParsePrefix("2001:db8:6::12/128"), Iface: "ppp1", PPP: true},
		},
	}
	p := policyFrom(t, nil)
	v6 := func(local, peer string) Request {
		r := baseRequest()
		r.Local6, r.Peer6 = netip.MustParseAddr(local), netip.MustParseAddr(peer)
		return r
	}
	for _, c := range []struct {
		r    Request
		want string
	}{
		{v6("2001:db8:6::1", "2001:db8:6::2"), ""},
		{v6("2001:db8:1::2", "2001:db8:6::2"), "local 2001:db8:1::2 is an address of this server (eth0)"},
		{v6("2001:db8:6::1", "2001:db8:1::7"), "route 2001:db8:1::/64 dev eth0 already covers peer 2001:db8:1::7"},
		{v6("2001:db8:6::11", "2001:db8:6::2"), "local 2001:db8:6::11 is in use by another link on this server"},
		{v6("2001:db8:6::1", "2001:db8:6::12"), "peer 2001:db8:6::12 is in use by another link on this server"},
	} {
		err := p.checkHost(c.r, host)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%v refused: %v", c.r.Peer6, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("error %v, want %q", err, c.want)
		}
	}
}

// With IPv6 the link is up once IPCP and IPV6CP both are, in either
// order; a second IPV6CP up after that is a renegotiation.
func TestPPPDWatcherIPv6(t *testing.T) {
	v4 := []string{"Using interface ppp0", "local  IP address 198.51.100.1", "remote IP address 198.51.100.2"}
	v6 := []string{"local  LL address fe80::c633:6401", "remote LL address fe80::c633:6402"}
	for _, order := range [][]string{slices.Concat(v4, v6), slices.Concat(v6, v4)} {
		w := newPPPDWatcher()
		w.want6 = true
		for i, l := range order {
			if up := w.line(l); up != (i == len(order)-1) {
				t.Fatalf("%q: up %v at line %d of %q", l, up, i, order)
			}
			select {
			case <-w.ipcp:
				if i < 2 || i == 2 && order[0] != v4[0] {
					t.Fatalf("IPCP reported up at line %d of %q", i, order)
				}
			default:
				if l == v4[2] {
					t.Fatalf("IPCP not reported up at %q", l)
				}
			}
		}
		select {
		case <-w.again:
			t.Fatal("renegotiation reported at the first up")
		default:
		}
		w.line("remote LL address fe80::c633:6402")
		select {
		case <-w.again:
		default:
			t.Error("a second IPV6CP up is not reported as a renegotiation")
		}
	}
	// Without IPv6 the LL lines do not hold the link up, nor count.
	w := newPPPDWatcher()
	for i, l := range v4 {
		if up := w.line(l); up != (i == len(v4)-1) {
			t.Fatalf("IPv4 only: %q: up %v", l, up)
		}
	}
}
