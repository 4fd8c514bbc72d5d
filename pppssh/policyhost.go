package pppssh

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vpn-pppssh/vpn-pppssh/internal/nldump"
	"golang.org/x/sys/unix"
)

// The server half gives the client's end of the tunnel a /32 route (and a
// /128 for IPv6), gives
// its own end an address, and routes CLIENT_NETWORKS to the client. Any of
// these can take traffic the server sends elsewhere: a peer address that is
// the server's resolver, inside a LAN the server is on, or another
// client's tunnel; a local address that is some host the server talks to.
// CheckHost refuses them by looking at what the server has now.

// hostAddr is an address on one of the server's interfaces.
type hostAddr struct {
	Addr  netip.Addr
	Iface string
	PPP   bool // on a PPP interface: another link's, maybe another client's
}

// hostRoute is a route of the server's main table.
type hostRoute struct {
	Dst   netip.Prefix
	Iface string
	Via   netip.Addr
	PPP   bool // through a PPP interface: another link's, maybe another client's
}

func (r hostRoute) String() string {
	s := "route " + r.Dst.String()
	if r.Via.IsValid() {
		s += " via " + r.Via.String()
	}
	if r.Iface != "" {
		s += " dev " + r.Iface
	}
	return s
}

// hostState is the seam to the kernel: the real one asks netlink, tests
// pass a fake.
type hostState interface {
	addrs() ([]hostAddr, error)
	routes() ([]hostRoute, error)
}

// CheckHost refuses tunnel addresses and networks that would take the
// server's own traffic: an address on one of the server's interfaces, and
// a tunnel /32 or a CLIENT_NETWORKS prefix that overlaps a route of the
// main table other than a default route (0.0.0.0/0, or the 0.0.0.0/1 and
// 128.0.0.0/1 pair a VPN uses instead of it). Overlapping only a default
// route is fine: the more specific tunnel route takes just its own
// addresses, which ALLOW_PEERS and ALLOW_NETWORKS bound. Run it after a
// session this one takes over has gone, so its routes do not count.
func (p Policy) CheckHost(r Request) error { return p.checkHost(r, netlinkHost{}) }

func (p Policy) checkHost(r Request, h hostState) error {
	addrs, err := h.addrs()
	if err != nil {
		return fmt.Errorf("listing the server's addresses: %w", err)
	}
	routes, err := h.routes()
	if err != nil {
		return fmt.Errorf("listing the server's routes: %w", err)
	}
	var tunnel []struct {
		role string
		addr netip.Addr
	}
	for _, t := range []struct {
		role string
		addr netip.Addr
	}{{"peer", r.Peer}, {"local", r.Local}, {"peer", r.Peer6}, {"local", r.Local6}} {
		if t.addr.IsValid() {
			tunnel = append(tunnel, t)
		}
	}
	// What belongs to another link (a PPP interface: another client's
	// session, as likely as not) is not named: a client learns only that
	// what it asked for is taken.
	for _, t := range tunnel {
		for _, a := range addrs {
			if a.Addr != t.addr {
				continue
			}
			if a.PPP {
				return fmt.Errorf("%s %s is in use by another link on this server", t.role, t.addr)
			}
			return fmt.Errorf("%s %s is an address of this server (%s)", t.role, t.addr, a.Iface)
		}
	}
	for _, n := range r.Routes {
		for _, a := range addrs {
			if !n.Contains(a.Addr) {
				continue
			}
			if a.PPP {
				return fmt.Errorf("network %s contains an address of another link on this server", n)
			}
			return fmt.Errorf("network %s contains %s, an address of this server (%s)", n, a.Addr, a.Iface)
		}
	}
	for _, rt := range routes {
		if isDefaultRoute(rt.Dst) {
			continue
		}
		for _, t := range tunnel {
			if !rt.Dst.Contains(t.addr) {
				continue
			}
			if rt.PPP {
				return fmt.Errorf("%s %s is in use by another link on this server", t.role, t.addr)
			}
			return fmt.Errorf("%s already covers %s %s: the server sends that traffic elsewhere", rt, t.role, t.addr)
		}
		for _, n := range r.Routes {
			if !rt.Dst.Overlaps(n) {
				continue
			}
			if rt.PPP {
				return fmt.Errorf("network %s overlaps a route of another link on this server", n)
			}
			return fmt.Errorf("%s overlaps network %s: the server sends that traffic elsewhere", rt, n)
		}
	}
	return nil
}

var defaultRoutes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/0"),
	netip.MustParsePrefix("0.0.0.0/1"),
	netip.MustParsePrefix("128.0.0.0/1"),
	netip.MustParsePrefix("::/0"),
	netip.MustParsePrefix("::/1"),
	netip.MustParsePrefix("8000::/1"),
}

func isDefaultRoute(p netip.Prefix) bool {
	for _, d := range defaultRoutes {
		if p == d {
			return true
		}
	}
	return false
}

// netlinkHost reads the server's interfaces and main routing table.
type netlinkHost struct{}

// iface names the interface of index and says whether it is a PPP one.
func (netlinkHost) iface(index int) (string, bool) {
	if l, err := netlink.LinkByIndex(index); err == nil {
		return l.Attrs().Name, l.Type() == "ppp"
	}
	return fmt.Sprintf("interface %d", index), false
}

func (h netlinkHost) addrs() ([]hostAddr, error) {
	list, err := nldump.Retry(func() ([]netlink.Addr, error) { return netlink.AddrList(nil, netlink.FAMILY_ALL) })
	if err != nil {
		return nil, err
	}
	var out []hostAddr
	for _, a := range list {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		name, ppp := h.iface(a.LinkIndex)
		if a.Label != "" {
			name = a.Label
		}
		out = append(out, hostAddr{Addr: ip.Unmap(), Iface: name, PPP: ppp})
	}
	return out, nil
}

func (h netlinkHost) routes() ([]hostRoute, error) {
	var list []netlink.Route
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		l, err := nldump.Retry(func() ([]netlink.Route, error) {
			return netlink.RouteListFiltered(family, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
		})
		if err != nil {
			return nil, err
		}
		list = append(list, l...)
	}
	var out []hostRoute
	for _, r := range list {
		hr := hostRoute{Dst: netip.MustParsePrefix("0.0.0.0/0")}
		if r.Family == netlink.FAMILY_V6 {
			hr.Dst = netip.MustParsePrefix("::/0")
		}
		if r.Dst != nil {
			ip, ok := netip.AddrFromSlice(r.Dst.IP)
			ones, _ := r.Dst.Mask.Size()
			if !ok {
				continue
			}
			hr.Dst = netip.PrefixFrom(ip.Unmap(), ones)
		}
		if gw, ok := netip.AddrFromSlice(r.Gw); ok {
			hr.Via = gw.Unmap()
		}
		if r.LinkIndex > 0 {
			hr.Iface, hr.PPP = h.iface(r.LinkIndex)
		}
		out = append(out, hr)
	}
	return out, nil
}
