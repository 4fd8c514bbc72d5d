package device

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/vpn-pppssh/vpn-pppssh/internal/nldump"
)

// addrs is the link's addresses of family fam as "local peer/len brd"
// text, sorted as the kernel lists them.
func (n *testNS) addrs(t *testing.T, index, fam int) []string {
	t.Helper()
	link, err := n.nl.LinkByIndex(index)
	if err != nil {
		t.Fatalf("looking up link %d: %v", index, err)
	}
	as, err := nldump.Retry(func() ([]netlink.Addr, error) { return n.nl.AddrList(link, fam) })
	if err != nil {
		t.Fatalf("listing addresses of %s: %v", link.Attrs().Name, err)
	}
	var out []string
	for _, a := range as {
		s := a.IPNet.String()
		if a.Peer != nil {
			s += " peer " + a.Peer.String()
		}
		if a.Broadcast != nil {
			s += " brd " + a.Broadcast.String()
		}
		out = append(out, s)
	}
	return out
}

// tuntap returns the device's link and checks the kernel sees it as a
// non-persistent tun/tap device of the kind wanted, up, with mtu.
func (n *testNS) checkTuntap(t *testing.T, d *Device, kind Kind, mtu int) netlink.Link {
	t.Helper()
	link, err := n.nl.LinkByIndex(d.Index())
	if err != nil {
		t.Fatalf("looking up %s by index %d: %v", d.Name(), d.Index(), err)
	}
	a := link.Attrs()
	if a.Name != d.Name() {
		t.Errorf("link %d is named %q, Device.Name says %q", d.Index(), a.Name, d.Name())
	}
	tt, ok := link.(*netlink.Tuntap)
	if !ok {
		t.Fatalf("%s is a %s link, want tuntap", a.Name, link.Type())
	}
	wantMode := netlink.TUNTAP_MODE_TUN
	if kind == TAP {
		wantMode = netlink.TUNTAP_MODE_TAP
	}
	if tt.Mode != wantMode {
		t.Errorf("%s mode %v, want %v", a.Name, tt.Mode, wantMode)
	}
	if !tt.NonPersist {
		t.Errorf("%s is persistent: it would outlive the process", a.Name)
	}
	if a.Flags&net.FlagUp == 0 {
		t.Errorf("%s is down", a.Name)
	}
	if a.MTU != mtu {
		t.Errorf("%s MTU %d, want %d", a.Name, a.MTU, mtu)
	}
	return link
}

// closeAndCheckGone closes d and checks the kernel deleted the device.
func (n *testNS) closeAndCheckGone(t *testing.T, d *Device) {
	t.Helper()
	if err := d.Close(); err != nil {
		t.Fatalf("closing %s: %v", d.Name(), err)
	}
	if !n.gone(t, d.Index()) {
		t.Errorf("%s still exists after Close", d.Name())
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close of %s: %v", d.Name(), err)
	}
}

func TestCreateTUN(t *testing.T) {
	n := newNS(t)
	d := n.mustCreate(t, Config{
		Kind: TUN, Name: "vpntest0", MTU: 1400,
		Addr: netip.MustParsePrefix("192.0.2.1/32"),
		Peer: netip.MustParseAddr("192.0.2.2"),
	})
	if d.Name() != "vpntest0" || d.Kind() != TUN {
		t.Errorf("device %s kind %v, want vpntest0 tun", d.Name(), d.Kind())
	}
	n.checkTuntap(t, d, TUN, 1400)
	got := strings.Join(n.addrs(t, d.Index(), netlink.FAMILY_V4), ", ")
	if want := "192.0.2.1/32 peer 192.0.2.2/32"; got != want {
		t.Errorf("addresses of %s: %q, want %q", d.Name(), got, want)
	}
	n.closeAndCheckGone(t, d)
}

func TestCreateTUNv6(t *testing.T) {
	n := newNS(t)
	d := n.mustCreate(t, Config{
		Kind: TUN,
		Addr: netip.MustParsePrefix("2001:db8::1/128"),
		Peer: netip.MustParseAddr("2001:db8::2"),
	})
	if !strings.HasPrefix(d.Name(), "tun") {
		t.Errorf("kernel-chosen name %q does not start with tun", d.Name())
	}
	n.checkTuntap(t, d, TUN, 1500)
	got := n.addrs(t, d.Index(), netlink.FAMILY_V6)
	want := "2001:db8::1/128 peer 2001:db8::2/128"
	found := false
	for _, a := range got {
		found = found || a == want
	}
	if !found {
		t.Errorf("addresses of %s: %q, want one %q", d.Name(), got, want)
	}
	n.closeAndCheckGone(t, d)
}

func TestCreateTAP(t *testing.T) {
	n := newNS(t)
	d := n.mustCreate(t, Config{Kind: TAP, Addr: netip.MustParsePrefix("198.51.100.7/24")})
	if !strings.HasPrefix(d.Name(), "tap") {
		t.Errorf("kernel-chosen name %q does not start with tap", d.Name())
	}
	n.checkTuntap(t, d, TAP, 1500)
	got := strings.Join(n.addrs(t, d.Index(), netlink.FAMILY_V4), ", ")
	if want := "198.51.100.7/24 brd 198.51.100.255"; got != want {
		t.Errorf("addresses of %s: %q, want %q", d.Name(), got, want)
	}
	n.closeAndCheckGone(t, d)
}

// bridgeState is what Create and Close must not change on a bridge.
func (n *testNS) bridgeState(t *testing.T, name string) string {
	t.Helper()
	br, err := n.nl.LinkByName(name)
	if err != nil {
		t.Fatalf("looking up bridge %s: %v", name, err)
	}
	a := br.Attrs()
	// Only what an administrator sets: the kernel's own running flag
	// follows the ports' carrier.
	up := "down"
	if a.Flags&net.FlagUp != 0 {
		up = "up"
	}
	return strings.Join(append([]string{
		a.Name, br.Type(), a.HardwareAddr.String(), up,
		"mtu=" + itoa(a.MTU), "index=" + itoa(a.Index), "master=" + itoa(a.MasterIndex),
	}, n.addrs(t, a.Index, netlink.FAMILY_V4)...), " ")
}

func itoa(i int) string { return strconv.Itoa(i) }

// addBridge makes an up bridge as a LAN has it: an address, a port lan0
// (a veth), and MTU and MAC address left to the kernel, which fits them to
// the ports (so the bridge has lan0's MAC address and MTU 9000). lan0's
// MAC address is above all but 1/64 of the kernel's random ones for a tap.
func (n *testNS) addBridge(t *testing.T, name string) {
	t.Helper()
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name, MTU: 9000}}
	if err := n.nl.LinkAdd(br); err != nil {
		t.Fatalf("adding bridge %s: %v", name, err)
	}
	mac, _ := net.ParseMAC("fc:00:5e:00:00:10")
	lan := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "lan0", MTU: 9000, HardwareAddr: mac}, PeerName: "lan1"}
	if err := n.nl.LinkAdd(lan); err != nil {
		t.Fatalf("adding veth lan0: %v", err)
	}
	if err := n.nl.LinkSetMaster(lan, br); err != nil {
		t.Fatalf("making lan0 a port of %s: %v", name, err)
	}
	if err := n.nl.AddrAdd(br, &netlink.Addr{IPNet: ipNet(netip.MustParsePrefix("203.0.113.1/24"))}); err != nil {
		t.Fatalf("adding an address to %s: %v", name, err)
	}
	if err := n.nl.LinkSetUp(br); err != nil {
		t.Fatalf("setting %s up: %v", name, err)
	}
	if got := n.bridgeState(t, name); !strings.Contains(got, "fc:00:5e:00:00:10 up mtu=9000") {
		t.Fatalf("the test bridge is not as the test needs it: %s", got)
	}
}

// ports is the names of the bridge's ports.
func (n *testNS) ports(t *testing.T, bridge int) []string {
	t.Helper()
	ls, err := nldump.Retry(n.nl.LinkList)
	if err != nil {
		t.Fatalf("listing links: %v", err)
	}
	var names []string
	for _, l := range ls {
		if l.Attrs().MasterIndex == bridge {
			names = append(names, l.Attrs().Name)
		}
	}
	return names
}

func TestCreateTAPBridgePort(t *testing.T) {
	n := newNS(t)
	n.addBridge(t, "brtest")
	before := n.bridgeState(t, "brtest")
	br, err := n.nl.LinkByName("brtest")
	if err != nil {
		t.Fatal(err)
	}
	links := n.links(t)
	if d, err := n.create(t, Config{Kind: TAP, Bridge: "brtest", MTU: 1500}); err == nil {
		t.Errorf("a 1500-byte port of a 9000-byte bridge was made: %s", d.Name())
	} else if !strings.Contains(err.Error(), "MTU 1500 for a port of bridge brtest, whose MTU is 9000") {
		t.Errorf("a 1500-byte port of a 9000-byte bridge: %v", err)
	}
	if after := n.links(t); after != links {
		t.Errorf("a refused MTU left:\n%s\nbefore:\n%s", after, links)
	}

	d := n.mustCreate(t, Config{Kind: TAP, Bridge: "brtest"})
	link := n.checkTuntap(t, d, TAP, 9000)
	if got := link.Attrs().MasterIndex; got != br.Attrs().Index {
		t.Errorf("%s master index %d, want brtest's %d", d.Name(), got, br.Attrs().Index)
	}
	if mac := link.Attrs().HardwareAddr; len(mac) != 6 || mac[0] != 0xfe {
		t.Errorf("bridge port %s has MAC address %s, want fe:...", d.Name(), mac)
	}
	if got := n.addrs(t, d.Index(), netlink.FAMILY_V4); len(got) != 0 {
		t.Errorf("bridge port %s has addresses %q, want none", d.Name(), got)
	}
	if after := n.bridgeState(t, "brtest"); after != before {
		t.Errorf("joining changed the bridge:\nbefore %s\nafter  %s", before, after)
	}
	n.closeAndCheckGone(t, d)
	if after := n.bridgeState(t, "brtest"); after != before {
		t.Errorf("Close changed the bridge:\nbefore %s\nafter  %s", before, after)
	}
	if got := n.ports(t, br.Attrs().Index); len(got) != 1 || got[0] != "lan0" {
		t.Errorf("brtest's ports after Close: %q, want only lan0", got)
	}
}

func TestCreateBridgeRefused(t *testing.T) {
	n := newNS(t)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "vetha"}, PeerName: "vethb"}
	if err := n.nl.LinkAdd(veth); err != nil {
		t.Fatalf("adding veth pair: %v", err)
	}
	before := n.links(t)
	for _, tc := range []struct {
		bridge string
		is     func(error) bool
	}{
		{"brnone", func(err error) bool { var nf netlink.LinkNotFoundError; return errors.As(err, &nf) }},
		{"vetha", func(err error) bool { return errors.Is(err, ErrNotBridge) }},
	} {
		d, err := n.create(t, Config{Kind: TAP, Name: "taptest0", Bridge: tc.bridge})
		if err == nil {
			t.Errorf("Create with bridge %s made %s, want an error", tc.bridge, d.Name())
			continue
		}
		t.Logf("bridge %s: %v", tc.bridge, err)
		if !strings.Contains(err.Error(), "bridge "+tc.bridge) || !tc.is(err) {
			t.Errorf("bridge %s: error %q does not name it or has the wrong cause", tc.bridge, err)
		}
		if after := n.links(t); after != before {
			t.Errorf("bridge %s: a failed Create changed the links:\nbefore\n%s\nafter\n%s", tc.bridge, before, after)
		}
	}
}

func TestCreateRefusesBadConfig(t *testing.T) {
	n := newNS(t)
	before := n.links(t)
	for _, cfg := range []Config{
		{Kind: TUN, Name: "a/b"},
		{Kind: TUN, Name: "toolongname1234x"},
		{Kind: TUN, Name: ".."},
		{Kind: TUN, Name: "a b"},
		{Kind: TUN, Name: "tun%d"},
		{Kind: TAP, Name: "tapok", Bridge: "br 0"},
		{Kind: TUN, Name: "tunok", Addr: netip.MustParsePrefix("192.0.2.1/24"), Peer: netip.MustParseAddr("192.0.2.2")},
	} {
		if d, err := n.create(t, cfg); err == nil {
			t.Errorf("Create(%+v) made %s, want an error", cfg, d.Name())
		}
		if after := n.links(t); after != before {
			t.Errorf("Create(%+v) changed the links:\nbefore\n%s\nafter\n%s", cfg, before, after)
		}
	}
}

// TestCreateNameInUse: an existing link of the wanted name, even a
// persistent tun device that TUNSETIFF could attach to, is never taken
// over.
func TestCreateNameInUse(t *testing.T) {
	n := newNS(t)
	first := n.mustCreate(t, Config{Kind: TUN, Name: "vpntest0"})
	// netlink makes a Tuntap with TUNSETIFF, which acts in the calling
	// thread's namespace whatever the handle: hence n.do.
	persistent := &netlink.Tuntap{LinkAttrs: netlink.LinkAttrs{Name: "ptun0"}, Mode: netlink.TUNTAP_MODE_TUN, Flags: netlink.TUNTAP_NO_PI}
	var err error
	if nsErr := n.do(func() { err = netlink.LinkAdd(persistent) }); nsErr != nil {
		t.Fatal(nsErr)
	}
	if err != nil {
		t.Fatalf("adding a persistent tun device: %v", err)
	}
	if _, err := n.nl.LinkByName("ptun0"); err != nil {
		t.Fatalf("the persistent tun device is not in the test namespace: %v", err)
	}
	before := n.links(t)
	for _, name := range []string{"vpntest0", "ptun0", "lo"} {
		d, err := n.create(t, Config{Kind: TUN, Name: name, Addr: netip.MustParsePrefix("192.0.2.1/32"), Peer: netip.MustParseAddr("192.0.2.2")})
		if err == nil {
			t.Errorf("Create named %s succeeded (%s), want an error", name, d.Name())
			continue
		}
		if !errors.Is(err, unix.EBUSY) || !strings.Contains(err.Error(), name) {
			t.Errorf("Create named %s: %v, want EBUSY naming the device", name, err)
		}
	}
	if after := n.links(t); after != before {
		t.Errorf("failed Creates changed the links:\nbefore\n%s\nafter\n%s", before, after)
	}
	if got := n.addrs(t, persistent.Attrs().Index, netlink.FAMILY_V4); len(got) != 0 {
		t.Errorf("ptun0 was configured by a failed Create: %q", got)
	}
	n.checkTuntap(t, first, TUN, 1500)
}

// TestCreateUndo: a step failing after the device exists removes it, and
// the error names the step and the device.
func TestCreateUndo(t *testing.T) {
	n := newNS(t)
	before := n.links(t)
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		// A tap's largest MTU is 65535 less its Ethernet header.
		{Config{Kind: TAP, Name: "taptest0", MTU: 65535}, "setting MTU 65535 on taptest0: "},
		// IPv6 needs an MTU of 1280 at least.
		{Config{Kind: TUN, Name: "tuntest0", MTU: 1000,
			Addr: netip.MustParsePrefix("2001:db8::1/128"), Peer: netip.MustParseAddr("2001:db8::2")},
			"adding address 2001:db8::1/128 peer 2001:db8::2 to tuntest0: "},
	} {
		d, err := n.create(t, tc.cfg)
		if err == nil {
			t.Errorf("Create(%+v) made %s, want an error", tc.cfg, d.Name())
			continue
		}
		if !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("Create(%+v): %q, want it to start %q", tc.cfg, err, tc.want)
		}
		if after := n.links(t); after != before {
			t.Errorf("Create(%+v) failed but left:\n%s\nbefore it:\n%s", tc.cfg, after, before)
		}
	}
}
