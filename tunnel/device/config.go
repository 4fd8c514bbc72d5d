package device

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Kind is the layer a device works at.
type Kind int

const (
	// TUN is a layer 3 device (IFF_TUN|IFF_NO_PI): each Read and Write is
	// one IPv4 or IPv6 packet.
	TUN Kind = iota + 1
	// TAP is a layer 2 device (IFF_TAP|IFF_NO_PI): each Read and Write is
	// one Ethernet frame, so ARP, DHCP and non-IP protocols cross.
	TAP
)

// String returns "tun" or "tap".
func (k Kind) String() string {
	switch k {
	case TUN:
		return "tun"
	case TAP:
		return "tap"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Config is what Create makes. The zero value of each optional field
// leaves that setting alone.
type Config struct {
	Kind Kind
	// Name is the interface name wanted; "" lets the kernel pick the
	// first free tun%d or tap%d. A name already in use is an error: an
	// existing device is never taken over.
	Name string
	// MTU is set on the device; 0 leaves the kernel's default (1500).
	// A bridge port must have its bridge's MTU: 0 takes it, another
	// value is refused (the kernel would change the bridge's MTU to fit).
	MTU int
	// Addr is the device's own address. For TUN it is a host prefix
	// (/32, /128) and Peer is the other end; for TAP any prefix, the
	// subnet both ends share. The zero Prefix adds no address (a bridge
	// port, for instance).
	Addr netip.Prefix
	// Peer is the point-to-point peer of a TUN device (IFA_ADDRESS, as
	// in `ip addr add A peer B`); it must be zero for TAP.
	Peer netip.Addr
	// Addr6 and Peer6 are the device's IPv6 address and, for TUN, its
	// peer, as Addr and Peer: the zero values add none. They are added
	// without duplicate address detection (the two ends are configured
	// from one checked pair, and a tentative address cannot be a source).
	Addr6 netip.Prefix
	Peer6 netip.Addr
	// NoIPv6 turns IPv6 off on the device (disable_ipv6): a link that
	// carries no IPv6 takes none from its peer, and has no link-local
	// address to be reached on.
	NoIPv6 bool
	// Bridge makes a TAP device a port of this existing bridge. Only the
	// device's own membership is changed, and Close undoes it. The port
	// gets the bridge's MTU and a MAC address the bridge will not adopt
	// (fe:xx:xx:xx:xx:xx), so that the kernel, which fits a bridge's MTU
	// and address to its ports unless an administrator set them, leaves
	// a bridge with other ports as it was. A bridge with no other port
	// takes the tap's MAC address while it is a port.
	Bridge string
	// Offload puts a virtio-net header (VNetHdr, VNetHdrLen bytes) before
	// every packet read from and written to the device, and asks the
	// kernel for checksum and TCP segmentation offload: a Read may then
	// return a TCP super-packet of up to 64 KiB that the kernel did not
	// cut to the MTU, and a Write may hand one in, which the kernel cuts
	// wherever the packet goes next (see offload_linux.go).
	Offload bool
}

// MaxPacketSize is the largest packet or frame a device can carry (a TUN
// MTU of 65535, a TAP MTU of 65521 plus the 14-byte Ethernet header): a
// Read buffer this large is never cut short.
const MaxPacketSize = 65535

// ErrMalformed is matched (errors.Is) by the error of a Write that the
// kernel refused as malformed (EINVAL): a tun packet that is neither IPv4
// nor IPv6, a tap frame shorter than an Ethernet header. The device is
// still usable; count the packet and go on.
var ErrMalformed = errors.New("malformed packet refused by the kernel")

// ErrNotBridge is matched by Create's error when Config.Bridge names a
// link that is not a bridge.
var ErrNotBridge = errors.New("not a bridge")

// ifNameMax is the longest interface name: IFNAMSIZ (16) less the NUL.
const ifNameMax = 15

// minMTU is the smallest MTU the kernel accepts on a tun or tap device
// (68, the IPv4 minimum); maxMTU the largest.
const (
	minMTU = 68
	maxMTU = 65535
)

// validate checks cfg without touching the system.
func (cfg *Config) validate() error {
	if cfg.Kind != TUN && cfg.Kind != TAP {
		return fmt.Errorf("device kind %d: must be TUN or TAP", int(cfg.Kind))
	}
	if cfg.Name != "" {
		if err := checkName(cfg.Name); err != nil {
			return fmt.Errorf("device name %q: %w", cfg.Name, err)
		}
	}
	if cfg.MTU != 0 && (cfg.MTU < minMTU || cfg.MTU > maxMTU) {
		return fmt.Errorf("device MTU %d: must be 0 (kernel default) or %d to %d", cfg.MTU, minMTU, maxMTU)
	}
	if err := cfg.validateAddrs(); err != nil {
		return err
	}
	if cfg.Bridge != "" {
		if cfg.Kind != TAP {
			return fmt.Errorf("bridge %q: only a TAP device can be a bridge port", cfg.Bridge)
		}
		if err := checkName(cfg.Bridge); err != nil {
			return fmt.Errorf("bridge name %q: %w", cfg.Bridge, err)
		}
	}
	return nil
}

func (cfg *Config) validateAddrs() error {
	if err := checkPair(cfg.Kind, cfg.Addr, cfg.Peer); err != nil {
		return err
	}
	if err := checkPair(cfg.Kind, cfg.Addr6, cfg.Peer6); err != nil {
		return err
	}
	switch {
	case cfg.Addr6.IsValid() && !cfg.Addr6.Addr().Is6():
		return fmt.Errorf("device address %s: not IPv6", cfg.Addr6)
	case cfg.Addr6.IsValid() && cfg.NoIPv6:
		return fmt.Errorf("device address %s: IPv6 is turned off (NoIPv6)", cfg.Addr6)
	}
	return nil
}

// checkPair checks one family's address and peer.
func checkPair(kind Kind, addr netip.Prefix, peer netip.Addr) error {
	cfg := struct {
		Kind Kind
		Addr netip.Prefix
		Peer netip.Addr
	}{kind, addr, peer}
	if cfg.Addr != (netip.Prefix{}) {
		if !cfg.Addr.IsValid() {
			return fmt.Errorf("device address %s: not a valid prefix", cfg.Addr)
		}
		if err := checkHost(cfg.Addr.Addr()); err != nil {
			return fmt.Errorf("device address %s: %w", cfg.Addr, err)
		}
	}
	switch cfg.Kind {
	case TAP:
		if cfg.Peer.IsValid() {
			return fmt.Errorf("peer %s: a TAP device shares a subnet, it has no point-to-point peer", cfg.Peer)
		}
	case TUN:
		if !cfg.Addr.IsValid() && !cfg.Peer.IsValid() {
			return nil
		}
		if !cfg.Addr.IsValid() || !cfg.Peer.IsValid() {
			return fmt.Errorf("device address %s, peer %s: a TUN device needs both or neither", cfg.Addr, cfg.Peer)
		}
		if !cfg.Addr.IsSingleIP() {
			return fmt.Errorf("device address %s: a TUN device's address is a single host (/%d)", cfg.Addr, cfg.Addr.Addr().BitLen())
		}
		if err := checkHost(cfg.Peer); err != nil {
			return fmt.Errorf("peer %s: %w", cfg.Peer, err)
		}
		if cfg.Peer.Is4() != cfg.Addr.Addr().Is4() {
			return fmt.Errorf("device address %s, peer %s: not the same IP version", cfg.Addr, cfg.Peer)
		}
		if cfg.Peer == cfg.Addr.Addr() {
			return fmt.Errorf("peer %s: the same as the device's own address", cfg.Peer)
		}
	}
	return nil
}

// checkHost refuses addresses that cannot be an interface's own or its
// peer's.
func checkHost(a netip.Addr) error {
	switch {
	case a.Zone() != "":
		return errors.New("a zone is not allowed")
	case a.Is4In6():
		return errors.New("write an IPv4 address in IPv4 form")
	case a.IsUnspecified(), a.IsMulticast():
		return errors.New("not a unicast address")
	}
	return nil
}

// checkName applies the kernel's rules for interface names
// (dev_valid_name: at most 15 bytes, not "." or "..", no '/', ':' or
// white space), and more: only printable ASCII, since names end up in
// messages and hook arguments, and no '%', which the kernel would take
// for a template (an empty Name already lets the kernel pick).
func checkName(name string) error {
	switch {
	case name == "":
		return errors.New("empty")
	case len(name) > ifNameMax:
		return fmt.Errorf("longer than %d bytes", ifNameMax)
	case name == "." || name == "..":
		return errors.New("not a name")
	}
	if i := strings.IndexFunc(name, func(r rune) bool {
		return r <= ' ' || r >= 0x7f || r == '/' || r == ':' || r == '%'
	}); i >= 0 {
		return fmt.Errorf("byte %d: only printable ASCII without '/', ':', '%%' or spaces", i)
	}
	return nil
}
