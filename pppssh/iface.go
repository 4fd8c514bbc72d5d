package pppssh

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vpn-pppssh/vpn-pppssh/internal/nldump"
)

// confirmInterface checks through netlink that the interface pppd named is
// up and carries the negotiated point-to-point addresses. Its lookups are
// netlink dumps (LinkByName is one on kernels without IFLA_IFNAME lookup),
// which another link coming up at the same moment can interrupt: they are
// retried (nldump).
func confirmInterface(iface string, local, remote netip.Addr) error {
	link, err := nldump.Retry(func() (netlink.Link, error) { return netlink.LinkByName(iface) })
	if err != nil {
		return fmt.Errorf("pppd reported interface %s, but netlink cannot find it: %w", iface, err)
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		return fmt.Errorf("interface %s is not up", iface)
	}
	addrs, err := nldump.Retry(func() ([]netlink.Addr, error) { return netlink.AddrList(link, netlink.FAMILY_V4) })
	if err != nil {
		return fmt.Errorf("listing addresses of %s: %w", iface, err)
	}
	for _, a := range addrs {
		if a.IP.Equal(local.AsSlice()) && a.Peer != nil && a.Peer.IP.Equal(remote.AsSlice()) {
			return nil
		}
	}
	return fmt.Errorf("interface %s does not carry %s peer %s (it has %v)", iface, local, remote, addrs)
}
