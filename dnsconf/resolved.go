package dnsconf

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"
)

// systemd-resolved's D-Bus API (org.freedesktop.resolve1(5)).
const (
	resolvedName    = "org.freedesktop.resolve1"
	resolvedPath    = dbus.ObjectPath("/org/freedesktop/resolve1")
	resolvedManager = "org.freedesktop.resolve1.Manager"
)

// Address families as SetLinkDNS takes them: Linux's AF_INET and AF_INET6,
// whatever the platform this is built for.
const (
	afInet  = 2
	afInet6 = 10
)

// linkAddr is one element of SetLinkDNS's a(iay): an address family and
// the address in network byte order (4 or 16 bytes).
type linkAddr struct {
	Family  int32
	Address []byte
}

// linkDomain is one element of SetLinkDomains's a(sb): a domain, and
// whether it only routes queries to the link (false: it is also searched).
type linkDomain struct {
	Domain      string
	RoutingOnly bool
}

// resolver is the seam over the calls to systemd-resolved.
type resolver interface {
	// running reports whether resolved owns its name on the bus.
	running(ctx context.Context) (bool, error)
	setLinkDNS(ctx context.Context, ifindex int32, addrs []linkAddr) error
	setLinkDomains(ctx context.Context, ifindex int32, domains []linkDomain) error
	revertLink(ctx context.Context, ifindex int32) error
	close() error
}

func linkAddrs(servers []netip.Addr) []linkAddr {
	out := make([]linkAddr, 0, len(servers))
	for _, a := range servers {
		if a.Is4() {
			b := a.As4()
			out = append(out, linkAddr{Family: afInet, Address: b[:]})
		} else {
			b := a.As16()
			out = append(out, linkAddr{Family: afInet6, Address: b[:]})
		}
	}
	return out
}

func linkDomains(search []string) []linkDomain {
	out := make([]linkDomain, 0, len(search))
	for _, d := range search {
		out = append(out, linkDomain{Domain: d})
	}
	return out
}

// probeTimeout bounds the question whether resolved runs, and busTimeout
// a connection to the bus with the calls made on it: a bus that accepts
// the connection and never answers (a daemon stopped, or refusing our
// messages) must not hang a link's start or teardown. A connection is
// closed when its context ends.
const (
	probeTimeout = 5 * time.Second
	busTimeout   = 10 * time.Second
)

// resolvedRunning reports whether systemd-resolved runs: whether its name
// is owned on the system bus. No bus is an error, and means no.
func (h *host) resolvedRunning(ctx context.Context) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	r, err := h.bus(ctx)
	if err != nil {
		return false, fmt.Errorf("connecting to the system bus: %w", err)
	}
	defer r.close()
	return r.running(ctx)
}

// applyResolved gives the link's servers and domains to systemd-resolved
// for the link's interface (SetLinkDNS, SetLinkDomains), after recording
// the interface's index.
func applyResolved(ctx context.Context, h *host, cfg Config) (*state, error) {
	idx, err := h.ifindex(cfg.Iface)
	if err != nil {
		return nil, fmt.Errorf("systemd-resolved: interface %s: %w", cfg.Iface, err)
	}
	st := &state{Link: cfg.Link, Backend: BackendResolved, Iface: cfg.Iface, Servers: cfg.Servers, Search: cfg.Search, Index: idx}
	if err := h.writeState(st); err != nil {
		return nil, err
	}
	if err := setResolved(ctx, h, st); err != nil {
		return rollback(h, st, err)
	}
	return st, nil
}

func setResolved(ctx context.Context, h *host, st *state) error {
	ctx, cancel := context.WithTimeout(ctx, busTimeout)
	defer cancel()
	r, err := h.bus(ctx)
	if err != nil {
		return fmt.Errorf("systemd-resolved: connecting to the system bus: %w", err)
	}
	defer r.close()
	idx := int32(st.Index)
	if len(st.Servers) > 0 {
		if err := r.setLinkDNS(ctx, idx, linkAddrs(st.Servers)); err != nil {
			return fmt.Errorf("systemd-resolved: SetLinkDNS %s on %s (index %d): %w", describeAddrs(st.Servers), st.Iface, idx, err)
		}
	}
	if len(st.Search) > 0 {
		if err := r.setLinkDomains(ctx, idx, linkDomains(st.Search)); err != nil {
			return fmt.Errorf("systemd-resolved: SetLinkDomains %v on %s (index %d): %w", st.Search, st.Iface, idx, err)
		}
	}
	return nil
}

// undoResolved reverts the link's settings in systemd-resolved
// (RevertLink). When the interface is gone, its settings went with it;
// an interface of the same name with another index is another link's.
func undoResolved(ctx context.Context, h *host, st *state) error {
	name, err := h.ifname(st.Index)
	if err != nil {
		return fmt.Errorf("systemd-resolved: looking for interface %s (index %d): %w", st.Iface, st.Index, err)
	}
	if name != st.Iface {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, busTimeout)
	defer cancel()
	r, err := h.bus(ctx)
	if err != nil {
		return fmt.Errorf("systemd-resolved: connecting to the system bus to revert %s: %w", st.Iface, err)
	}
	defer r.close()
	if err := r.revertLink(ctx, int32(st.Index)); err != nil {
		return fmt.Errorf("systemd-resolved: RevertLink %s (index %d): %w", st.Iface, st.Index, err)
	}
	return nil
}

func describeAddrs(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, " ")
}

// ifindex returns the index of the interface called name.
func (h *host) ifindex(name string) (int, error) {
	ifs, err := h.interfaces()
	if err != nil {
		return 0, err
	}
	for _, i := range ifs {
		if i.Name == name {
			return i.Index, nil
		}
	}
	return 0, errNoInterface
}

// ifname returns the name of the interface with index idx, or "" when
// there is none.
func (h *host) ifname(idx int) (string, error) {
	ifs, err := h.interfaces()
	if err != nil {
		return "", err
	}
	for _, i := range ifs {
		if i.Index == idx {
			return i.Name, nil
		}
	}
	return "", nil
}

var errNoInterface = errors.New("no such interface")

// dbusResolver is systemd-resolved on a D-Bus connection.
type dbusResolver struct {
	conn *dbus.Conn
}

func (d *dbusResolver) running(ctx context.Context) (bool, error) {
	var owned bool
	err := d.conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, resolvedName).Store(&owned)
	if err != nil {
		return false, fmt.Errorf("asking the bus whether %s runs: %w", resolvedName, err)
	}
	return owned, nil
}

func (d *dbusResolver) call(ctx context.Context, method string, args ...any) error {
	return d.conn.Object(resolvedName, resolvedPath).CallWithContext(ctx, resolvedManager+"."+method, 0, args...).Err
}

func (d *dbusResolver) setLinkDNS(ctx context.Context, ifindex int32, addrs []linkAddr) error {
	return d.call(ctx, "SetLinkDNS", ifindex, addrs)
}

func (d *dbusResolver) setLinkDomains(ctx context.Context, ifindex int32, domains []linkDomain) error {
	return d.call(ctx, "SetLinkDomains", ifindex, domains)
}

func (d *dbusResolver) revertLink(ctx context.Context, ifindex int32) error {
	return d.call(ctx, "RevertLink", ifindex)
}

func (d *dbusResolver) close() error { return d.conn.Close() }
