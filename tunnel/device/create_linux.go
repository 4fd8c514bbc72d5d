package device

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
	"github.com/vpn-pppssh/vpn-pppssh/internal/ifaddr"
	"golang.org/x/sys/unix"
)

// cloneDevice is the tun driver's clone device: every open gives a new
// file that TUNSETIFF turns into an interface.
const cloneDevice = "/dev/net/tun"

// Create makes a new, non-persistent tun or tap device in the calling
// thread's network namespace and configures it: MTU, address (and peer),
// bridge port, link up. On any failure it undoes what it did, newest
// first, and its error names the step and the device ("setting MTU 1400
// on tun3: ..."). A Config that does not validate is refused before
// anything is touched; so is a Bridge that is missing or is no bridge,
// and an MTU other than the bridge's (see Config.MTU).
func Create(cfg Config) (*Device, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	// The handle's socket lives in this thread's namespace: later calls
	// (Counters, Close) reach the device from whatever thread runs them.
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("opening a netlink socket: %w", err)
	}
	var bridge netlink.Link
	if cfg.Bridge != "" {
		if bridge, err = lookupBridge(h, cfg.Bridge); err != nil {
			h.Close()
			return nil, err
		}
		if err := matchBridgeMTU(&cfg, bridge); err != nil {
			h.Close()
			return nil, err
		}
	}
	f, name, tso, err := openTun(cfg.Kind, cfg.Name, cfg.Offload)
	if err != nil {
		h.Close()
		return nil, err
	}
	d := &Device{file: f, h: h, name: name, kind: cfg.Kind, vnet: cfg.Offload, tso: tso}
	if err := d.configure(cfg, bridge); err != nil {
		// Close is the undo: it leaves the bridge if configure joined
		// it, then closes the fd, which deletes the device together
		// with its MTU, address and routes.
		return nil, errors.Join(err, d.Close())
	}
	return d, nil
}

// openTun creates the interface with the TUNSETIFF ioctl and returns its
// file, registered with Go's poller, the name the kernel gave it, and with
// vnet whether the kernel segments TCP for it (see setOffload).
//
// Why not netlink.LinkAdd(&netlink.Tuntap{...}): it can hand back such a
// file (Queues: 1, NonPersist: true puts non-blocking fds in Tuntap.Fds),
// but in v1.3.1 it also issues TUNSETOWNER and TUNSETGROUP (to uid/gid 0
// when unset), leaks the fd when one of those fails (so a failed Create
// would leave a device behind for the life of the process), and reports
// errno with %v, so callers cannot tell EBUSY (name taken) from anything
// else. The ioctl is a dozen lines; everything after it uses netlink.
func openTun(kind Kind, name string, vnet bool) (f *os.File, _ string, tso bool, err error) {
	what := kind.String() + " device"
	if name != "" {
		what += " " + name
	}
	fd, err := unix.Open(cloneDevice, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, "", false, fmt.Errorf("creating %s: opening %s: %w", what, cloneDevice, err)
	}
	ifr, err := unix.NewIfreq(name) // "": the kernel picks tun%d / tap%d
	if err != nil {
		unix.Close(fd)
		return nil, "", false, fmt.Errorf("creating %s: %w", what, err)
	}
	flags := uint16(unix.IFF_NO_PI)
	if vnet {
		flags |= unix.IFF_VNET_HDR
	}
	if kind == TAP {
		flags |= unix.IFF_TAP
	} else {
		flags |= unix.IFF_TUN
	}
	// IFF_TUN_EXCL: without it TUNSETIFF on the name of an existing
	// (persistent) tun device attaches to that device instead of making
	// a new one, and this process would configure, and on Close leave
	// behind, a device it does not own.
	ifr.SetUint16(flags | unix.IFF_TUN_EXCL)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.EBUSY) {
			return nil, "", false, fmt.Errorf("creating %s: a link of that name exists: %w", what, err)
		}
		return nil, "", false, fmt.Errorf("creating %s: %w", what, err)
	}
	if vnet {
		if tso, err = setOffload(fd); err != nil {
			unix.Close(fd)
			return nil, "", false, fmt.Errorf("creating %s: %w", what, err)
		}
	}
	// Non-blocking before os.NewFile, and only after TUNSETIFF (the fd
	// cannot be polled before): NewFile then registers it with the
	// runtime poller, so a Read parks its goroutine rather than a thread
	// and Close wakes it with os.ErrClosed.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, "", false, fmt.Errorf("creating %s: making its fd non-blocking: %w", what, err)
	}
	name = ifr.Name()
	f = os.NewFile(uintptr(fd), cloneDevice)
	// Only a pollable file supports deadlines: this proves the
	// registration happened, which Close unblocking Read depends on.
	if err := f.SetReadDeadline(noDeadline); err != nil {
		f.Close()
		return nil, "", false, fmt.Errorf("creating %s device %s: its fd is not pollable: %w", kind, name, err)
	}
	return f, name, tso, nil
}

// lookupBridge returns the link named name, which must be a bridge.
func lookupBridge(h *netlink.Handle, name string) (netlink.Link, error) {
	link, err := h.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil, fmt.Errorf("bridge %s does not exist: %w", name, err)
		}
		return nil, fmt.Errorf("looking up bridge %s: %w", name, err)
	}
	if _, ok := link.(*netlink.Bridge); !ok {
		return nil, fmt.Errorf("bridge %s: it is a %q link: %w", name, link.Type(), ErrNotBridge)
	}
	return link, nil
}

// matchBridgeMTU gives a bridge port the bridge's MTU. Unless an
// administrator fixed the bridge's MTU, the kernel sets it to the smallest
// of its ports' whenever a port joins or leaves: a port with another MTU
// would change the bridge (a 1500-byte tap on a 9000-byte LAN lowers it).
// So MTU 0 takes the bridge's, and another value is refused.
func matchBridgeMTU(cfg *Config, bridge netlink.Link) error {
	mtu := bridge.Attrs().MTU
	switch cfg.MTU {
	case 0:
		cfg.MTU = mtu
	case mtu:
	default:
		return fmt.Errorf("MTU %d for a port of bridge %s, whose MTU is %d: a port must match its bridge (leave the MTU unset to take the bridge's)", cfg.MTU, cfg.Bridge, mtu)
	}
	return nil
}

// portMAC is a random, locally administered unicast MAC address starting
// fe: (greater than any vendor's). Unless an administrator fixed it, a
// bridge takes the lowest MAC address among its ports; with this one the
// tap never is the lowest, so a bridge with other ports keeps its address
// (and the LAN's ARP caches stay right). A bridge with no other port
// takes the tap's address whatever it is.
func portMAC() (net.HardwareAddr, error) {
	mac := make(net.HardwareAddr, 6)
	if _, err := rand.Read(mac[1:]); err != nil {
		return nil, err
	}
	mac[0] = 0xfe
	return mac, nil
}

// configure applies cfg to the new device d, recording on d only what
// succeeded, so that Close undoes exactly that.
func (d *Device) configure(cfg Config, bridge netlink.Link) error {
	link, err := d.h.LinkByName(d.name)
	if err != nil {
		return fmt.Errorf("looking up the new device %s: %w", d.name, err)
	}
	d.index = link.Attrs().Index
	if cfg.MTU != 0 {
		if err := d.h.LinkSetMTU(link, cfg.MTU); err != nil {
			return fmt.Errorf("setting MTU %d on %s: %w", cfg.MTU, d.name, err)
		}
	}
	if cfg.NoIPv6 {
		if err := ifaddr.DisableIPv6(d.name); err != nil {
			return err
		}
	} else if cfg.Addr6.IsValid() {
		if err := ifaddr.NoAutoconf(d.name); err != nil {
			return err
		}
	}
	if err := d.addAddr(link, cfg.Addr, cfg.Peer); err != nil {
		return err
	}
	if bridge != nil {
		mac, err := portMAC()
		if err != nil {
			return fmt.Errorf("choosing a MAC address for %s: %w", d.name, err)
		}
		if err := d.h.LinkSetHardwareAddr(link, mac); err != nil {
			return fmt.Errorf("setting MAC address %s on %s: %w", mac, d.name, err)
		}
		if err := d.h.LinkSetMasterByIndex(link, bridge.Attrs().Index); err != nil {
			return fmt.Errorf("making %s a port of bridge %s: %w", d.name, cfg.Bridge, err)
		}
		d.bridge, d.bridgeName = bridge.Attrs().Index, cfg.Bridge
	}
	if err := d.h.LinkSetUp(link); err != nil {
		return fmt.Errorf("setting %s up: %w", d.name, err)
	}
	// IPv6 after the link is up: a kernel that adds an IPv6 address to a
	// device that is down makes the peer's route only for some kinds of
	// device (6.1's tun gets none when it comes up).
	return d.addAddr(link, cfg.Addr6, cfg.Peer6)
}

// addAddr adds one address, with its point-to-point peer when valid, the
// IPv6 ones without duplicate address detection (see Config.Addr6).
func (d *Device) addAddr(link netlink.Link, p netip.Prefix, peer netip.Addr) error {
	if !p.IsValid() {
		return nil
	}
	addr := &netlink.Addr{IPNet: ipNet(p)}
	what := p.String()
	if peer.IsValid() {
		addr.Peer = ipNet(netip.PrefixFrom(peer, p.Bits()))
		what += " peer " + peer.String()
	}
	if p.Addr().Is6() {
		addr.Flags = unix.IFA_F_NODAD
	}
	if err := d.h.AddrAdd(link, addr); err != nil {
		return fmt.Errorf("adding address %s to %s: %w", what, d.name, err)
	}
	return nil
}

// ipNet is p as the net.IPNet netlink wants, keeping p's host bits.
func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{
		IP:   p.Addr().AsSlice(),
		Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen()),
	}
}
