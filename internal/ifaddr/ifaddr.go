// Package ifaddr gives a link's interface the addresses that its carrier
// does not: the IPv6 addresses of a PPP link, which IPV6CP leaves at
// link-local ones (pppd(8): IPV6CP negotiates interface identifiers only).
// The addresses go with the interface when pppd ends, so nothing records
// them.
package ifaddr

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vpn-pppssh/vpn-pppssh/internal/nldump"
	"golang.org/x/sys/unix"
)

// Add gives iface the address local with peer as the other end of the
// point-to-point link when peer is valid (`ip addr add LOCAL peer PEER`),
// without duplicate address detection: the link has two ends, both
// configured from one checked pair, and an address that is tentative for a
// second could not be used as a source meanwhile.
func Add(iface string, local netip.Prefix, peer netip.Addr) error {
	what := local.String()
	if peer.IsValid() {
		what += " peer " + peer.String()
	}
	l, err := nldump.Retry(func() (netlink.Link, error) { return netlink.LinkByName(iface) })
	if err != nil {
		return fmt.Errorf("adding address %s: interface %s: %w", what, iface, err)
	}
	a := &netlink.Addr{IPNet: ipNet(local), Flags: unix.IFA_F_NODAD}
	if peer.IsValid() {
		a.Peer = ipNet(netip.PrefixFrom(peer, local.Bits()))
	}
	if err := netlink.AddrAdd(l, a); err != nil {
		return fmt.Errorf("adding address %s to %s: %w", what, iface, err)
	}
	return nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// The sysctls that make a host take configuration from what arrives on an
// interface: router advertisements (a default route, on-link prefixes,
// addresses) and redirects. Over a link to one peer they would let that
// peer steer this host's own IPv6 traffic, around every policy.
var autoconf = []string{"accept_ra", "autoconf", "accept_redirects"}

// NoAutoconf makes iface take no router advertisement and no redirect, in
// the calling thread's network namespace. A kernel without IPv6 has none
// of these files, and nothing to turn off.
func NoAutoconf(iface string) error {
	for _, k := range autoconf {
		if err := writeConf(iface, k, "0"); err != nil {
			return fmt.Errorf("turning %s off on %s: %w", k, iface, err)
		}
	}
	return nil
}

// DisableIPv6 turns IPv6 off on iface (disable_ipv6): a link that carries
// no IPv6 takes none from its peer, and has no link-local address.
func DisableIPv6(iface string) error {
	if err := writeConf(iface, "disable_ipv6", "1"); err != nil {
		return fmt.Errorf("turning IPv6 off on %s: %w", iface, err)
	}
	return nil
}

// writeConf sets net.ipv6.conf.IFACE.KEY; a kernel without IPv6 is no
// error.
func writeConf(iface, key, v string) error {
	if iface == "" || iface == "." || iface == ".." || iface == "all" || iface == "default" || strings.ContainsAny(iface, "/\x00") {
		return fmt.Errorf("bad interface name %q", iface)
	}
	err := os.WriteFile("/proc/sys/net/ipv6/conf/"+iface+"/"+key, []byte(v+"\n"), 0o644)
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat("/proc/sys/net/ipv6"); errors.Is(serr, fs.ErrNotExist) {
			return nil
		}
	}
	return err
}

// SetUpPPP finishes a ppp interface's IPv6 once IPCP (and IPV6CP) are up.
// With IPv6 (local valid): no router advertisement or redirect from the
// peer, then the global address, since IPV6CP gave link-local ones only.
// Without: IPv6 off, since pppd's noipv6 only keeps IPV6CP from starting,
// and the kernel would still take IPv6 frames the peer sends.
func SetUpPPP(iface string, local netip.Prefix, peer netip.Addr) error {
	if !local.IsValid() {
		return DisableIPv6(iface)
	}
	if err := NoAutoconf(iface); err != nil {
		return err
	}
	return Add(iface, local, peer)
}
