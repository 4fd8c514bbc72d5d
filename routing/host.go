package routing

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vpn-pppssh/vpn-pppssh/internal/nldump"
	"github.com/vpn-pppssh/vpn-pppssh/routing/firewall"
	"golang.org/x/sys/unix"
)

// RouteProtocol marks the routes vpn-pppssh adds (rtnetlink's rtm_protocol;
// `ip route show proto 158` lists them).
const RouteProtocol = 158

// Route is a route to Dst through Dev, via Gw when it is set; or, when
// Unreachable, a route that refuses Dst (no Dev; connect(2) then fails
// with EHOSTUNREACH for IPv6, ENETUNREACH for IPv4).
type Route struct {
	Dst         netip.Prefix `json:"dst"`
	Gw          netip.Addr   `json:"gw,omitzero"`
	Dev         string       `json:"dev"`
	Unreachable bool         `json:"unreachable,omitempty"`
}

func (r Route) String() string {
	if r.Unreachable {
		return "unreachable " + r.Dst.String()
	}
	if r.Gw.IsValid() {
		return fmt.Sprintf("%s via %s dev %s", r.Dst, r.Gw, r.Dev)
	}
	return fmt.Sprintf("%s dev %s", r.Dst, r.Dev)
}

// host is the seam between the Router and the kernel. addMasquerade and
// delMasquerade name what they did in their errors ("adding masquerade for
// 198.51.100.2/32: ..."), as the firewall backends do; the Router names
// the other changes.
type host interface {
	addRoute(Route) error
	delRoute(Route) error
	routeTo(netip.Addr) (Route, error)
	forwarding(family int) (string, error) // family 6: IPv6's; else IPv4's
	setForwarding(family int, v string) error
	ifaceForwarding(family int) (map[string]string, error) // conf/*/forwarding but "all"
	setIfaceForwarding(family int, iface, v string) error
	linkIndex(iface string) (int, error)
	rpFilter(iface string) (string, error)
	setRPFilter(iface, v string) error
	addMasquerade(firewall.Masquerade) error
	delMasquerade(firewall.Masquerade) error
	addSourceCheck(firewall.SourceCheck) error
	delSourceCheck(firewall.SourceCheck) error
	firewallName() string
	netns() uint64 // identifies the network namespace the changes apply to
	hasIPv6() bool // the kernel speaks IPv6 here (else there is none to block)
}

// forwardingPath is where a family's forwarding setting is.
func forwardingPath(family int) string {
	if family == 6 {
		return "/proc/sys/net/ipv6/conf/all/forwarding"
	}
	return "/proc/sys/net/ipv4/ip_forward"
}

// netlinkHost is the real host: netlink for routes, procfs for forwarding,
// the firewall package for masquerade (its backend probed on first use).
type netlinkHost struct {
	fwOnce sync.Once
	fw     firewall.Backend
	fwErr  error
}

func newNetlinkHost() *netlinkHost { return &netlinkHost{} }

func (h *netlinkHost) nlRoute(r Route) (*netlink.Route, error) {
	dst := &net.IPNet{IP: r.Dst.Addr().AsSlice(), Mask: net.CIDRMask(r.Dst.Bits(), r.Dst.Addr().BitLen())}
	if r.Unreachable {
		return &netlink.Route{Dst: dst, Type: unix.RTN_UNREACHABLE, Protocol: RouteProtocol, Table: unix.RT_TABLE_MAIN}, nil
	}
	l, err := nldump.Retry(func() (netlink.Link, error) { return netlink.LinkByName(r.Dev) })
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", r.Dev, err)
	}
	nr := &netlink.Route{
		LinkIndex: l.Attrs().Index,
		Dst:       dst,
		Protocol:  RouteProtocol,
		Scope:     netlink.SCOPE_LINK,
	}
	if r.Gw.IsValid() {
		nr.Gw = r.Gw.AsSlice()
		nr.Scope = netlink.SCOPE_UNIVERSE
	}
	return nr, nil
}

func (h *netlinkHost) addRoute(r Route) error {
	nr, err := h.nlRoute(r)
	if err != nil {
		return err
	}
	err = netlink.RouteAdd(nr)
	if errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("one exists already (not added by vpn-pppssh, or by another link): %w", err)
	}
	return err
}

func (h *netlinkHost) delRoute(r Route) error {
	nr, err := h.nlRoute(r)
	if err != nil {
		var gone netlink.LinkNotFoundError
		if errors.As(err, &gone) {
			return nil // the interface is gone, and its routes with it
		}
		return err
	}
	err = netlink.RouteDel(nr)
	if errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENODEV) {
		return nil // already gone
	}
	return err
}

// DeviceTo names the interface this host sends packets for dst through.
func DeviceTo(dst netip.Addr) (string, error) {
	r, err := newNetlinkHost().routeTo(dst)
	return r.Dev, err
}

func (h *netlinkHost) routeTo(dst netip.Addr) (Route, error) {
	rs, err := netlink.RouteGet(dst.AsSlice())
	if err != nil {
		return Route{}, err
	}
	if len(rs) == 0 {
		return Route{}, errors.New("no route")
	}
	l, err := netlink.LinkByIndex(rs[0].LinkIndex)
	if err != nil {
		return Route{}, err
	}
	r := Route{Dev: l.Attrs().Name}
	if gw, ok := netip.AddrFromSlice(rs[0].Gw); ok {
		r.Gw = gw.Unmap()
	}
	return r, nil
}

// hasIPv6: /proc/net/if_inet6 exists when this network namespace's kernel
// has IPv6 (built in or loaded, and not disabled with ipv6.disable=1).
func (h *netlinkHost) hasIPv6() bool {
	_, err := os.Stat("/proc/net/if_inet6")
	return err == nil
}

func (h *netlinkHost) forwarding(family int) (string, error) {
	b, err := os.ReadFile(forwardingPath(family))
	return strings.TrimSpace(string(b)), err
}

func (h *netlinkHost) setForwarding(family int, v string) error {
	return os.WriteFile(forwardingPath(family), []byte(v+"\n"), 0o644)
}

// confDir is where a family's per-interface settings are.
func confDir(family int) string {
	if family == 6 {
		return "/proc/sys/net/ipv6/conf"
	}
	return "/proc/sys/net/ipv4/conf"
}

func (h *netlinkHost) ifaceForwarding(family int) (map[string]string, error) {
	ents, err := os.ReadDir(confDir(family))
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, e := range ents {
		if e.Name() == "all" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(confDir(family), e.Name(), "forwarding"))
		if err != nil {
			continue // gone meanwhile
		}
		out[e.Name()] = strings.TrimSpace(string(b))
	}
	return out, nil
}

func (h *netlinkHost) setIfaceForwarding(family int, iface, v string) error {
	if iface == "" || iface == "." || iface == ".." || iface == "all" || strings.Contains(iface, "/") {
		return fmt.Errorf("bad interface name %q", iface)
	}
	return os.WriteFile(filepath.Join(confDir(family), iface, "forwarding"), []byte(v+"\n"), 0o644)
}

// rpFilterPath is an interface's reverse-path filter setting. The kernel
// uses the larger of it and conf/all/rp_filter, so a host whose "all" is 2
// (loose) checks loosely whatever we write here.
func rpFilterPath(iface string) string {
	return filepath.Join("/proc/sys/net/ipv4/conf", iface, "rp_filter")
}

func (h *netlinkHost) linkIndex(iface string) (int, error) {
	l, err := netlink.LinkByName(iface)
	if err != nil {
		return 0, err
	}
	return l.Attrs().Index, nil
}

func (h *netlinkHost) rpFilter(iface string) (string, error) {
	b, err := os.ReadFile(rpFilterPath(iface))
	return strings.TrimSpace(string(b)), err
}

func (h *netlinkHost) setRPFilter(iface, v string) error {
	if iface == "" || iface == "." || iface == ".." || strings.Contains(iface, "/") {
		return fmt.Errorf("bad interface name %q", iface)
	}
	return os.WriteFile(rpFilterPath(iface), []byte(v+"\n"), 0o644)
}

func (h *netlinkHost) backend() (firewall.Backend, error) {
	h.fwOnce.Do(func() { h.fw, h.fwErr = firewall.Probe() })
	return h.fw, h.fwErr
}

func (h *netlinkHost) addMasquerade(m firewall.Masquerade) error {
	fw, err := h.backend()
	if err != nil {
		return fmt.Errorf("adding masquerade for %s: %w", m.Source, err)
	}
	return fw.Add(m) // its errors name the action
}

func (h *netlinkHost) delMasquerade(m firewall.Masquerade) error {
	fw, err := h.backend()
	if err != nil {
		return fmt.Errorf("removing masquerade for %s: %w", m.Source, err)
	}
	return fw.Remove(m)
}

func (h *netlinkHost) addSourceCheck(c firewall.SourceCheck) error {
	fw, err := h.backend()
	if err != nil {
		return fmt.Errorf("adding the IPv6 source check on %s: %w", c.Iface, err)
	}
	return fw.AddSourceCheck(c) // its errors name the action
}

func (h *netlinkHost) delSourceCheck(c firewall.SourceCheck) error {
	fw, err := h.backend()
	if err != nil {
		return fmt.Errorf("removing the IPv6 source check on %s: %w", c.Iface, err)
	}
	return fw.RemoveSourceCheck(c)
}

func (h *netlinkHost) firewallName() string {
	if h.fw == nil {
		return ""
	}
	return h.fw.Name()
}

func (h *netlinkHost) netns() uint64 {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &st); err != nil {
		return 0
	}
	return st.Ino
}
