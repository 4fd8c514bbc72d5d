package routing

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/vpn-pppssh/vpn-pppssh/internal/flock"
	"github.com/vpn-pppssh/vpn-pppssh/routing/firewall"
)

// Config is what a link wants of the host while it is up. Set may be called
// again with a changed Config; the difference is applied.
type Config struct {
	Iface        string         // the link's interface
	Networks     []netip.Prefix // reached through Iface
	Masquerade   []netip.Prefix // sources masqueraded when leaving by other interfaces
	Forwarding   bool           // this host routes for the peer
	DefaultRoute bool           // everything through Iface (two /1 routes, as OpenVPN's def1), and IPv6 refused beyond this host's own links
	Carrier      netip.Addr     // with DefaultRoute: the SSH server, kept on its current path
	// IPv6: the link carries IPv6. DefaultRoute then sends ::/1 and
	// 8000::/1 through Iface instead of refusing them, and SourceCheck
	// covers IPv6 too (a firewall rule: IPv6 has no rp_filter).
	IPv6 bool
	// Forwarding6: this host routes IPv6 for the peer. Apart from
	// Forwarding since it has a cost: a host that forwards IPv6 stops
	// taking router advertisements (accept_ra 1), which a client whose
	// own IPv6 comes from SLAAC would lose its default route to.
	Forwarding6 bool
	// Gateway and Gateway6 are the next hops through Iface for Networks
	// and the default route on a shared subnet (ethernet mode: the far
	// end's addresses); zero on a point-to-point link, whose routes need
	// none.
	Gateway, Gateway6 netip.Addr
	// SourceCheck drops packets arriving on Iface whose source address
	// this host would not route back through Iface (strict reverse-path
	// filtering, rp_filter=1): a peer can then send only from its own
	// address and the networks routed to it, never as another client or
	// as a host of the server's own networks.
	SourceCheck bool
}

// Router applies a link's Config to the host and undoes it.
type Router struct {
	link   string
	dir    string
	host   host
	j      *Journal
	others func() []Change // changes recorded in other links' journals (forwarding is shared per network namespace)
}

// New returns a Router for the real host whose journal lives in dir. It
// loads a journal a dead process may have left; Close undoes that too.
func New(link, dir string) (*Router, error) {
	return newRouter(link, dir, newNetlinkHost())
}

func newRouter(link, dir string, h host) (*Router, error) {
	j, err := OpenJournal(JournalPath(dir, link))
	if err != nil {
		return nil, err
	}
	r := &Router{link: link, dir: dir, host: h, j: j}
	r.others = r.otherJournals
	return r, nil
}

// Firewall names the firewall backend in use, or "" when none was needed.
func (r *Router) Firewall() string { return r.host.firewallName() }

// Applied lists the changes in force, oldest first.
func (r *Router) Applied() []Change { return r.j.Changes() }

// Set makes the host match cfg: it undoes what cfg no longer wants, newest
// first, then applies what is missing, recording each change once made.
func (r *Router) Set(cfg Config) error {
	unlock, err := lockHost(r.dir)
	if err != nil {
		return err
	}
	defer unlock()
	want, err := r.plan(cfg)
	if err != nil {
		return err
	}
	var errs []error
	kept := r.j.changes[:0:0]
	applied := r.j.changes
	for i := len(applied) - 1; i >= 0; i-- {
		c := applied[i]
		if slices.ContainsFunc(want, c.same) {
			kept = append([]Change{c}, kept...)
			continue
		}
		if err := r.undo(c); err != nil {
			errs = append(errs, err)
			kept = append([]Change{c}, kept...) // still ours to undo later
		}
	}
	r.j.changes = kept
	if err := r.j.rewrite(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	for _, c := range want {
		if slices.ContainsFunc(r.j.changes, c.same) {
			continue
		}
		done, err := r.apply(c)
		if err != nil {
			return err
		}
		if err := r.j.record(done); err != nil {
			return err
		}
	}
	return nil
}

// Close undoes every recorded change, newest first, going on past
// failures, and removes the journal once nothing is left.
func (r *Router) Close() error {
	unlock, err := lockHost(r.dir)
	if err != nil {
		return err
	}
	defer unlock()
	var errs []error
	var left []Change
	for i := len(r.j.changes) - 1; i >= 0; i-- {
		if err := r.undo(r.j.changes[i]); err != nil {
			errs = append(errs, err)
			left = append([]Change{r.j.changes[i]}, left...)
		}
	}
	r.j.changes = left
	if err := r.j.rewrite(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// plan lists the changes cfg needs, in the order they are applied.
func (r *Router) plan(cfg Config) ([]Change, error) {
	var want []Change
	if cfg.SourceCheck {
		want = append(want, Change{Kind: "rpfilter", RPFilter: &RPFilter{Iface: cfg.Iface}})
		if cfg.IPv6 {
			want = append(want, Change{Kind: "sourcecheck", SourceCheck: &firewall.SourceCheck{Link: r.link, Iface: cfg.Iface}})
		}
	}
	if cfg.Forwarding {
		want = append(want, Change{Kind: "forwarding", Forwarding: &Forwarding{}})
	}
	if cfg.Forwarding6 {
		want = append(want, Change{Kind: "forwarding", Forwarding: &Forwarding{Family: 6}})
	}
	for _, src := range cfg.Masquerade {
		m := firewall.Masquerade{Link: r.link, Source: src.Masked(), NotOut: cfg.Iface}
		want = append(want, Change{Kind: "masquerade", Masquerade: &m})
	}
	through := func(dst netip.Prefix) *Route {
		rt := &Route{Dst: dst.Masked(), Dev: cfg.Iface, Gw: cfg.Gateway}
		if dst.Addr().Is6() {
			rt.Gw = cfg.Gateway6
		}
		return rt
	}
	for _, n := range cfg.Networks {
		want = append(want, Change{Kind: "route", Route: through(n)})
	}
	if cfg.DefaultRoute {
		if !cfg.Carrier.IsValid() {
			return nil, errors.New("a default route through the tunnel needs the SSH server's address")
		}
		keep, err := r.carrierRoute(cfg.Carrier, cfg.Iface)
		if err != nil {
			return nil, err
		}
		want = append(want,
			Change{Kind: "route", Route: &keep},
			Change{Kind: "route", Route: through(netip.MustParsePrefix("0.0.0.0/1"))},
			Change{Kind: "route", Route: through(netip.MustParsePrefix("128.0.0.0/1"))})
		if cfg.IPv6 {
			want = append(want,
				Change{Kind: "route", Route: through(netip.MustParsePrefix("::/1"))},
				Change{Kind: "route", Route: through(netip.MustParsePrefix("8000::/1"))})
		} else if r.host.hasIPv6() {
			// The link carries IPv4 only: IPv6 must not go around it.
			// Every destination beyond the networks on a link of this
			// host (more specific routes) is refused while it is up.
			want = append(want,
				Change{Kind: "route", Route: &Route{Dst: netip.MustParsePrefix("::/1"), Unreachable: true}},
				Change{Kind: "route", Route: &Route{Dst: netip.MustParsePrefix("8000::/1"), Unreachable: true}})
		}
	}
	return want, nil
}

// carrierRoute is a host route that keeps the SSH server on the path it has
// now, so that the default route through the tunnel does not swallow the
// tunnel's own packets. A route we made earlier is reused as it is.
func (r *Router) carrierRoute(carrier netip.Addr, iface string) (Route, error) {
	dst := netip.PrefixFrom(carrier, carrier.BitLen())
	for _, c := range r.j.changes {
		if c.Route != nil && c.Route.Dst == dst {
			return *c.Route, nil
		}
	}
	now, err := r.host.routeTo(carrier)
	if err != nil {
		return Route{}, fmt.Errorf("finding the route to the SSH server %s: %w", carrier, err)
	}
	if now.Dev == iface {
		return Route{}, fmt.Errorf("the SSH server %s is reached through the tunnel itself (%s)", carrier, iface)
	}
	return Route{Dst: dst, Gw: now.Gw, Dev: now.Dev}, nil
}

func (r *Router) apply(c Change) (Change, error) {
	switch {
	case c.Route != nil:
		if err := r.host.addRoute(*c.Route); err != nil {
			return c, fmt.Errorf("adding route %s: %w", c.Route, err)
		}
	case c.Forwarding != nil:
		fam := c.Forwarding.Family
		prev, err := r.host.forwarding(fam)
		if err != nil {
			return c, fmt.Errorf("reading %s forwarding: %w", c.Forwarding.family(), err)
		}
		// Another link of ours may have switched it on already: keep the
		// value from before any of us, so that the last one out restores it.
		ifaces, err := r.host.ifaceForwarding(fam)
		if err != nil {
			return c, fmt.Errorf("reading %s forwarding: %w", c.Forwarding.family(), err)
		}
		for name, v := range ifaces {
			if v == prev {
				delete(ifaces, name) // put back by restoring "all"
			}
		}
		ns := r.host.netns()
		for _, o := range r.others() {
			if o.Forwarding != nil && o.Forwarding.NetNS == ns && o.Forwarding.Family == fam {
				prev, ifaces = o.Forwarding.Previous, o.Forwarding.Interfaces
			}
		}
		if err := r.host.setForwarding(fam, "1"); err != nil {
			return c, fmt.Errorf("enabling %s forwarding: %w", c.Forwarding.family(), err)
		}
		c.Forwarding = &Forwarding{Previous: prev, NetNS: ns, Family: fam, Interfaces: ifaces}
	case c.SourceCheck != nil:
		if err := r.host.addSourceCheck(*c.SourceCheck); err != nil {
			return c, err // named by the host
		}
	case c.RPFilter != nil:
		idx, err := r.host.linkIndex(c.RPFilter.Iface)
		if err != nil {
			return c, fmt.Errorf("interface %s: %w", c.RPFilter.Iface, err)
		}
		prev, err := r.host.rpFilter(c.RPFilter.Iface)
		if err != nil {
			return c, fmt.Errorf("reading the source check of %s: %w", c.RPFilter.Iface, err)
		}
		if err := r.host.setRPFilter(c.RPFilter.Iface, "1"); err != nil {
			return c, fmt.Errorf("checking sources on %s (rp_filter=1): %w", c.RPFilter.Iface, err)
		}
		c.RPFilter = &RPFilter{Iface: c.RPFilter.Iface, Index: idx, Previous: prev}
	case c.Masquerade != nil:
		// The host names the action ("adding masquerade for ..."), as the
		// firewall backends do: wrapping it again would say it twice.
		if err := r.host.addMasquerade(*c.Masquerade); err != nil {
			return c, err
		}
	}
	return c, nil
}

func (r *Router) undo(c Change) error {
	switch {
	case c.Route != nil:
		if err := r.host.delRoute(*c.Route); err != nil {
			return fmt.Errorf("removing route %s: %w", c.Route, err)
		}
	case c.Forwarding != nil:
		for _, o := range r.others() {
			if o.Forwarding != nil && o.Forwarding.NetNS == c.Forwarding.NetNS && o.Forwarding.Family == c.Forwarding.Family {
				return nil // still needed by another link, which restores it last
			}
		}
		if err := r.host.setForwarding(c.Forwarding.Family, c.Forwarding.Previous); err != nil {
			return fmt.Errorf("restoring %s forwarding to %s: %w", c.Forwarding.family(), c.Forwarding.Previous, err)
		}
		var errs []error
		for _, name := range slices.Sorted(maps.Keys(c.Forwarding.Interfaces)) {
			v := c.Forwarding.Interfaces[name]
			err := r.host.setIfaceForwarding(c.Forwarding.Family, name, v)
			if err != nil && !errors.Is(err, fs.ErrNotExist) { // an interface gone meanwhile has nothing to restore
				errs = append(errs, fmt.Errorf("restoring %s forwarding of %s to %s: %w", c.Forwarding.family(), name, v, err))
			}
		}
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
	case c.SourceCheck != nil:
		if err := r.host.delSourceCheck(*c.SourceCheck); err != nil {
			return err // named by the host
		}
	case c.RPFilter != nil:
		// Gone with its interface, as it usually is by now; an interface
		// of the same name is another link's, with a setting of its own.
		if idx, err := r.host.linkIndex(c.RPFilter.Iface); err != nil || idx != c.RPFilter.Index {
			return nil
		}
		if err := r.host.setRPFilter(c.RPFilter.Iface, c.RPFilter.Previous); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("restoring the source check of %s to %s: %w", c.RPFilter.Iface, c.RPFilter.Previous, err)
		}
	case c.Masquerade != nil:
		if err := r.host.delMasquerade(*c.Masquerade); err != nil {
			return err // named by the host, as for adding
		}
	}
	return nil
}

// hostLockWait bounds how long a Router waits for the host lock: a holder
// that is stopped (a root client suspended with Ctrl-Z) must not hang every
// other link's start and teardown for ever. What a teardown could not undo
// stays in its journal for the next start, stop or cleanup.
const hostLockWait = 30 * time.Second

// ErrHostBusy: the host lock was held by another process for too long.
var ErrHostBusy = errors.New("the server is busy")

func lockHost(dir string) (func(), error) { return LockHost(dir, hostLockWait) }

// LockHost serialises changes to what links share across processes: the
// forwarding setting, whose original value passes from link to link, and
// the firewall, where one link may delete the nftables table just as
// another adds a rule to it. Links starting together at boot meet here.
// It waits at most wait, polling a non-blocking lock, and returns the
// function that releases it.
func LockHost(dir string, wait time.Duration) (func(), error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	path := filepath.Join(dir, "host.lock")
	release, err := flock.Wait(path, wait)
	if errors.Is(err, flock.ErrTimeout) {
		return nil, fmt.Errorf("%w: another process held the host lock %s for more than %v; try again", ErrHostBusy, path, wait)
	}
	if err != nil {
		return nil, fmt.Errorf("host %w", err)
	}
	return release, nil
}

// otherJournals reads the journals of the other links in the directory.
func (r *Router) otherJournals() []Change {
	paths, _ := filepath.Glob(filepath.Join(r.dir, "*.journal"))
	var out []Change
	for _, p := range paths {
		if p == r.j.path || strings.HasSuffix(p, ".tmp") {
			continue
		}
		if j, err := OpenJournal(p); err == nil {
			out = append(out, j.changes...)
		}
	}
	return out
}

// Leftovers reports whether a journal with changes exists for link in dir.
func Leftovers(dir, link string) bool {
	fi, err := os.Stat(JournalPath(dir, link))
	return err == nil && fi.Size() > 0
}

// RemoveFirewallRules removes the masquerade rules and IPv6 source checks
// the firewall backends of this kernel hold for link, whether a journal remembers them or not: after
// /run was lost they are still recognisable by their owner's name. It
// returns how many it removed.
func RemoveFirewallRules(dir, link string) (int, error) {
	unlock, err := lockHost(dir)
	if err != nil {
		return 0, err
	}
	defer unlock()
	var errs []error
	removed := 0
	for _, open := range []func() (firewall.Backend, error){firewall.NewNFTables, firewall.NewLegacy} {
		b, err := open()
		if err != nil {
			continue // not on this kernel
		}
		rules, err := b.Rules(link)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", b.Name(), err))
			continue
		}
		checks, err := b.SourceChecks(link)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", b.Name(), err))
			continue
		}
		if len(rules)+len(checks) == 0 {
			continue
		}
		if err := b.RemoveLink(link); err != nil {
			// The backend names the action and the link.
			errs = append(errs, fmt.Errorf("%s: %w", b.Name(), err))
			continue
		}
		removed += len(rules) + len(checks)
	}
	return removed, errors.Join(errs...)
}
