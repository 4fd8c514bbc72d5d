package pppssh

import (
	"errors"
	"fmt"
	"net/netip"
)

// A link carries IPv6 beside IPv4 when it has IPv6 addresses
// (CLIENT_IFIP6ADDR, SERVER_IFIP6ADDR). In MODE=ppp both pppds negotiate
// IPV6CP (pppd's +ipv6, each end's interface identifier taken from its
// IPv4 address, so the link-local addresses are fixed) and then each end
// adds its global address with the other as its peer; in the tun and
// ethernet modes the devices get them with their IPv4 addresses. IPv6
// networks (SERVER_NETWORKS, CLIENT_NETWORKS) and DEFAULT_ROUTE's ::/1 and
// 8000::/1 are routed through the link like the IPv4 ones, and masquerade
// covers both families. A link without IPv6 addresses refuses IPv6 on its
// devices, so that neither end can send the other IPv6 that no rule checks.

// defaultEthernet6Bits is the prefix length of an ethernet-mode IPv6
// address given without one.
const defaultEthernet6Bits = 64

// CarriesIPv6 reports whether the link carries IPv6.
func (c *Config) CarriesIPv6() bool { return c.ClientIf6Addr.IsValid() || c.ServerIf6Addr.IsValid() }

// ClientIf6Prefix is this host's IPv6 address as its device gets it (a
// /128, or the shared subnet's length in ethernet mode); the zero Prefix
// without one.
func (c *Config) ClientIf6Prefix() netip.Prefix { return c.if6Prefix(c.ClientIf6Addr) }

// ServerIf6Prefix is the server's IPv6 address as its device gets it.
func (c *Config) ServerIf6Prefix() netip.Prefix { return c.if6Prefix(c.ServerIf6Addr) }

func (c *Config) if6Prefix(a netip.Addr) netip.Prefix {
	if !a.IsValid() {
		return netip.Prefix{}
	}
	if c.Mode == ModeEthernet {
		return netip.PrefixFrom(a, c.ethernet6Bits())
	}
	return netip.PrefixFrom(a, 128)
}

// ethernet6Bits is the prefix length of the ethernet IPv6 subnet.
func (c *Config) ethernet6Bits() int {
	switch {
	case c.ClientIf6Bits != 0:
		return c.ClientIf6Bits
	case c.ServerIf6Bits != 0:
		return c.ServerIf6Bits
	}
	return defaultEthernet6Bits
}

// validateIPv6 checks the IPv6 keys against each other and the mode, and
// that IPv6 networks have a link that carries them.
func (c *Config) validateIPv6() error {
	if !c.CarriesIPv6() {
		for _, n := range append(c.ServerNetworks, c.ClientNetworks...) {
			if n.Addr().Is6() {
				return fmt.Errorf("network %s is IPv6: set CLIENT_IFIP6ADDR and SERVER_IFIP6ADDR so that the link carries IPv6", n)
			}
		}
		return nil
	}
	bridged := func(server bool) bool {
		return c.Mode == ModeEthernet && (server && c.ServerBridge != "" || !server && c.ClientBridge != "")
	}
	switch {
	case !c.ClientIf6Addr.IsValid() && !bridged(false):
		return errors.New("SERVER_IFIP6ADDR needs CLIENT_IFIP6ADDR: an IPv6 link has an address at each end")
	case !c.ServerIf6Addr.IsValid() && !bridged(true):
		return errors.New("CLIENT_IFIP6ADDR needs SERVER_IFIP6ADDR: an IPv6 link has an address at each end")
	case c.ClientIf6Addr == c.ServerIf6Addr:
		return fmt.Errorf("SERVER_IFIP6ADDR and CLIENT_IFIP6ADDR are both %s: the two ends need different addresses", c.ServerIf6Addr)
	case c.ServerHelper != "" && !c.ClientIf6Addr.IsValid():
		return errors.New("CLIENT_IFIP6ADDR is needed with SERVER_HELPER: the server's policy checks the client's IPv6 address")
	case c.Mode == ModePPP && c.ServerHelper == "":
		return errors.New("IPv6 in MODE=ppp needs SERVER_HELPER: a bare pppd on the server negotiates no IPV6CP and adds no address")
	case c.Mode == ModePPP && !c.ClientIfAddr.IsValid():
		return errors.New("IPv6 in MODE=ppp needs CLIENT_IFIPADDR: the interface identifiers come from the IPv4 addresses")
	}
	if c.Mode != ModeEthernet {
		if c.ClientIf6Bits != 0 || c.ServerIf6Bits != 0 {
			return fmt.Errorf("a prefix length on CLIENT_IFIP6ADDR or SERVER_IFIP6ADDR applies to MODE=ethernet (a subnet both ends share); MODE=%s links a pair of addresses", c.Mode)
		}
		return nil
	}
	if c.ClientIf6Bits != 0 && c.ServerIf6Bits != 0 && c.ClientIf6Bits != c.ServerIf6Bits {
		return fmt.Errorf("CLIENT_IFIP6ADDR /%d and SERVER_IFIP6ADDR /%d: the two ends share one subnet, give them one prefix length", c.ClientIf6Bits, c.ServerIf6Bits)
	}
	if c.ClientIf6Addr.IsValid() && c.ServerIf6Addr.IsValid() {
		if cp := c.ClientIf6Prefix(); !cp.Contains(c.ServerIf6Addr) {
			return fmt.Errorf("CLIENT_IFIP6ADDR %s and SERVER_IFIP6ADDR %s are not in one subnet", cp, c.ServerIf6Prefix())
		}
	}
	return nil
}
