package pppssh

import (
	"fmt"
	"net/netip"
)

// validateMode checks the keys that belong to one mode: the PPP keys only
// with MODE=ppp, the device keys only with tun and ethernet, bridges and
// prefix lengths only with ethernet.
func (c *Config) validateMode() error {
	only := func(key, modes string) error {
		return fmt.Errorf("%s applies to MODE=%s, not MODE=%s", key, modes, c.Mode)
	}
	if c.Mode == ModePPP {
		for _, k := range []string{"MTU", "SERVER_TUN_UNIT"} {
			if c.explicit[k] && c.Get(k) != "" {
				return only(k, "tun and MODE=ethernet")
			}
		}
	} else {
		for _, k := range []string{"PPPD", "SERVER_PPPD", "SERVER_PPPD_CALL"} {
			if c.explicit[k] && c.Get(k) != "" {
				return only(k, ModePPP)
			}
		}
	}
	if c.ServerTunUnit >= 0 && c.ServerHelper != "" {
		return fmt.Errorf("SERVER_TUN_UNIT is for OpenSSH's forwarding: the server helper creates its own device")
	}
	if c.ServerHelper != "" && c.Mode != ModePPP && !c.ClientIfAddr.IsValid() {
		return fmt.Errorf("CLIENT_IFIPADDR is needed with SERVER_HELPER: the server's policy checks the client's address")
	}
	if c.Mode != ModeEthernet {
		switch {
		case c.ClientBridge != "":
			return only("CLIENT_BRIDGE", ModeEthernet)
		case c.ServerBridge != "":
			return only("SERVER_BRIDGE", ModeEthernet)
		case c.ClientIfBits != 0 || c.ServerIfBits != 0:
			return fmt.Errorf("a prefix length on CLIENT_IFIPADDR or SERVER_IFIPADDR applies to MODE=ethernet (a subnet both ends share); MODE=%s links a pair of addresses", c.Mode)
		}
		return nil
	}
	if c.ClientIfBits != 0 && c.ServerIfBits != 0 && c.ClientIfBits != c.ServerIfBits {
		return fmt.Errorf("CLIENT_IFIPADDR /%d and SERVER_IFIPADDR /%d: the two ends share one subnet, give them one prefix length", c.ClientIfBits, c.ServerIfBits)
	}
	if c.ClientIfAddr.IsValid() && c.ServerIfAddr.IsValid() {
		if cp, sp := c.ClientIfPrefix(), c.ServerIfPrefix(); !cp.Contains(c.ServerIfAddr) || !sp.Contains(c.ClientIfAddr) {
			return fmt.Errorf("CLIENT_IFIPADDR %s and SERVER_IFIPADDR %s are not in one subnet", cp, sp)
		}
	}
	return nil
}

// validateNone checks MODE=none, a connection for its port forwards only:
// at least one forward, and none of the keys that need a tunnel.
func (c *Config) validateNone() error {
	if c.ServerHostname == "" {
		return fmt.Errorf("missing required key SERVER_HOSTNAME")
	}
	if len(c.Forwards()) == 0 {
		return fmt.Errorf("MODE=none carries only port forwards: set LOCAL_FORWARDS, REMOTE_FORWARDS or DYNAMIC_FORWARDS")
	}
	def := Defaults()
	for _, k := range []string{"SERVER_IFIPADDR", "CLIENT_IFIPADDR", "SERVER_IFIP6ADDR", "CLIENT_IFIP6ADDR", "SERVER_NETWORKS", "CLIENT_NETWORKS",
		"SERVER_MASQUERADE", "CLIENT_MASQUERADE", "DEFAULT_ROUTE", "SERVER_HELPER", "DNS", "DNS_SEARCH",
		"IP_UP_DIR", "IP_DOWN_DIR", "IPPARAM", "MTU", "SERVER_TUN_UNIT", "OFFLOAD", "SERVER_PTY"} {
		if c.Get(k) != def.Get(k) {
			return fmt.Errorf("%s needs a tunnel: MODE=none carries only port forwards", k)
		}
	}
	return nil
}

// ethernetBits is the prefix length of the ethernet subnet.
func (c *Config) ethernetBits() int {
	switch {
	case c.ClientIfBits != 0:
		return c.ClientIfBits
	case c.ServerIfBits != 0:
		return c.ServerIfBits
	}
	return defaultEthernetBits
}

// ClientIfPrefix is this host's address as its device gets it: a host
// prefix in ppp and tun modes, the shared subnet's length in ethernet
// mode; the zero Prefix when the device has no address (a bridge port).
func (c *Config) ClientIfPrefix() netip.Prefix { return c.ifPrefix(c.ClientIfAddr) }

// ServerIfPrefix is the server's address as its device gets it.
func (c *Config) ServerIfPrefix() netip.Prefix { return c.ifPrefix(c.ServerIfAddr) }

func (c *Config) ifPrefix(a netip.Addr) netip.Prefix {
	if !a.IsValid() {
		return netip.Prefix{}
	}
	if c.Mode == ModeEthernet {
		return netip.PrefixFrom(a, c.ethernetBits())
	}
	return netip.PrefixFrom(a, a.BitLen())
}
