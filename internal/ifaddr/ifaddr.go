// Package ifaddr gives a link's interface the addresses that its carrier
// does not: the IPv6 addresses of a PPP link, which IPV6CP leaves at
// link-local ones (pppd(8): IPV6CP negotiates interface identifiers only).
// The addresses go with the interface when pppd ends, so nothing records
// them.
package ifaddr

import (
	"fmt"
	"net"
	"net/netip"

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
