package pppssh

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
)

// PolicyPath is the server's policy file for the server half.
const PolicyPath = "/etc/vpn-pppssh/server.conf"

// Policy is what the server's admin lets clients of the server half ask
// for. It lists what is allowed; whatever it does not list is refused.
// Without a policy file, or without ALLOW_PEERS in it, every request is
// refused: no range of tunnel addresses is safe to assume, since a private
// address may well be a host the server reaches through its gateway (a
// cloud resolver such as 10.0.0.2), which no look at the server's own
// interfaces and routes can tell from a free one. Each refusal names the
// key that would allow the request, so the admin knows what to write.
//
// Keys (server.conf, KEY=VALUE lines as in a link configuration):
//
//	ALLOW_NETWORKS   CLIENT_NETWORKS a client may have routed to it, each
//	                 inside one of these prefixes (IPv4 or IPv6); unset:
//	                 none
//	ALLOW_FORWARDING yes lets a client have forwarding turned on (IPv4,
//	                 and IPv6 for a link that carries it), which routes and
//	                 masquerade need too; default no
//	ALLOW_MASQUERADE yes lets a client have its addresses masqueraded;
//	                 default no
//	ALLOW_PEERS      prefixes both tunnel addresses (the server's end and
//	                 the client's, IPv4 and IPv6) must lie inside: a link
//	                 carries IPv6 only if its IPv6 addresses lie inside an
//	                 IPv6 prefix here; required: unset, every
//	                 request is refused; in ethernet mode the shared
//	                 subnet must lie inside one of them too
//	ALLOW_BRIDGES    ethernet mode: bridges a client's tap may join
//	                 (SERVER_BRIDGE); unset: none. A client in a bridge is
//	                 on that LAN and can use any of its addresses
//	MAX_SESSIONS     how many server halves may run at once (1-1024, 64)
//	MAX_SESSIONS_PER_ACCOUNT
//	                 how many of them one account (sudo's SUDO_UID) may
//	                 run at once (1-MAX_SESSIONS, 8 or MAX_SESSIONS if
//	                 that is less)
//	PPPD             the pppd the server half runs
//	OFFER_DNS        name servers (IPv4, at most two) the server half's
//	                 pppd offers its clients (pppd's ms-dns), for links
//	                 with DNS=peer; unset: none
//	PPPD_RESTARTS    how many times within 10 minutes the server half
//	                 starts a killed pppd again on a client's terminal
//	                 (0-100, 5); 0: never, the client redials
//
// Whatever the file says, CheckHost also refuses tunnel addresses and
// networks that would take traffic the server sends elsewhere.
type Policy struct {
	AllowNetworks   []netip.Prefix // CLIENT_NETWORKS must each lie inside one
	AllowPeers      []netip.Prefix // local and peer must each lie inside one
	AllowMasquerade bool
	AllowForwarding bool
	AllowBridges    []string // ethernet mode: bridges a client's tap may join
	MaxSessions     int
	// MaxSessionsPerAccount bounds the sessions of one account.
	MaxSessionsPerAccount int
	PPPD                  string       // the pppd the server half runs
	OfferDNS              []netip.Addr // ms-dns for the clients' pppd
	PPPDRestarts          int          // killed pppds restarted in place per session within 10 minutes

	path   string          // the file the policy came from
	exists bool            // whether that file exists
	set    map[string]bool // keys the file sets
}

// Bounds of MAX_SESSIONS.
const (
	DefaultMaxSessions = 64
	maxMaxSessions     = 1024
)

// Bounds of PPPD_RESTARTS.
const (
	DefaultPPPDRestarts = 5
	maxPPPDRestarts     = 100
)

// DefaultMaxSessionsPerAccount is MAX_SESSIONS_PER_ACCOUNT when the file
// does not set it (or MAX_SESSIONS, if that is less).
const DefaultMaxSessionsPerAccount = 8

// DefaultPolicy is the policy when the file at path does not exist: it
// refuses every request, since it lists no tunnel addresses (ALLOW_PEERS).
func DefaultPolicy(path string) Policy {
	return Policy{
		MaxSessions:           DefaultMaxSessions,
		MaxSessionsPerAccount: DefaultMaxSessionsPerAccount,
		PPPD:                  Defaults().ServerPPPD,
		PPPDRestarts:          DefaultPPPDRestarts,
		path:                  path,
	}
}

// LoadPolicy reads the policy file; a missing file is DefaultPolicy.
func LoadPolicy(path string) (Policy, error) {
	p := DefaultPolicy(path)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return p, nil
	}
	if err != nil {
		return p, fmt.Errorf("reading policy: %w", err)
	}
	defer f.Close()
	p.exists, p.set = true, map[string]bool{}
	if err := checkOwnership(f, path); err != nil {
		return p, err
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(f); err != nil {
		return p, fmt.Errorf("reading policy: %w", err)
	}
	sc := bufio.NewScanner(&buf)
	perAccountLine := 0
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		m := assignRE.FindSubmatch(line)
		if m == nil {
			return p, &ConfigError{File: path, Line: n, Err: fmt.Errorf("not a KEY=VALUE line: %q", clip(string(line)))}
		}
		key := string(m[1])
		v, err := unquote(string(m[2]))
		if err == nil {
			err = p.setKey(key, v)
		}
		if err != nil {
			return p, &ConfigError{File: path, Line: n, Key: key, Err: err}
		}
		p.set[key] = true
		if key == "MAX_SESSIONS_PER_ACCOUNT" {
			perAccountLine = n
		}
	}
	if err := sc.Err(); err != nil {
		return p, fmt.Errorf("reading policy: %w", err)
	}
	switch {
	case !p.set["MAX_SESSIONS_PER_ACCOUNT"]:
		p.MaxSessionsPerAccount = min(p.MaxSessionsPerAccount, p.MaxSessions)
	case p.MaxSessionsPerAccount > p.MaxSessions:
		return p, &ConfigError{File: path, Line: perAccountLine, Key: "MAX_SESSIONS_PER_ACCOUNT",
			Err: fmt.Errorf("%d is more than MAX_SESSIONS=%d", p.MaxSessionsPerAccount, p.MaxSessions)}
	}
	return p, nil
}

func (p *Policy) setKey(key, v string) error {
	switch key {
	case "ALLOW_NETWORKS":
		return setNetworks(&p.AllowNetworks, v)
	case "ALLOW_PEERS":
		if strings.TrimSpace(v) == "" {
			return fmt.Errorf("%w: list the prefixes tunnel addresses may come from (like 198.51.100.0/24)", ErrEmpty)
		}
		return setNetworks(&p.AllowPeers, v)
	case "ALLOW_MASQUERADE":
		return setBool(&p.AllowMasquerade, v)
	case "ALLOW_FORWARDING":
		return setBool(&p.AllowForwarding, v)
	case "MAX_SESSIONS":
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxMaxSessions {
			return fmt.Errorf("%q: use a number from 1 to %d", v, maxMaxSessions)
		}
		p.MaxSessions = n
		return nil
	case "MAX_SESSIONS_PER_ACCOUNT":
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxMaxSessions {
			return fmt.Errorf("%q: use a number from 1 to MAX_SESSIONS", v)
		}
		p.MaxSessionsPerAccount = n
		return nil
	case "PPPD":
		return setPath(&p.PPPD, v, false)
	case "PPPD_RESTARTS":
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > maxPPPDRestarts {
			return fmt.Errorf("%q: use a number from 0 (never) to %d", v, maxPPPDRestarts)
		}
		p.PPPDRestarts = n
		return nil
	case "OFFER_DNS":
		p.OfferDNS = nil
		for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
			a, err := netip.ParseAddr(f)
			if err != nil || !a.Is4() || !a.IsGlobalUnicast() && !a.IsPrivate() {
				return fmt.Errorf("%q is not an IPv4 unicast address (pppd offers IPv4 name servers only)", f)
			}
			p.OfferDNS = append(p.OfferDNS, a)
		}
		if len(p.OfferDNS) > 2 {
			return errors.New("at most two name servers: IPCP has a primary and a secondary")
		}
		return nil
	case "ALLOW_BRIDGES":
		p.AllowBridges = nil
		for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
			var name string
			if err := setIfName(&name, f); err != nil {
				return err
			}
			p.AllowBridges = append(p.AllowBridges, name)
		}
		return nil
	}
	return errors.New("unknown key (ALLOW_NETWORKS, ALLOW_PEERS, ALLOW_MASQUERADE, ALLOW_FORWARDING, ALLOW_BRIDGES, MAX_SESSIONS, MAX_SESSIONS_PER_ACCOUNT, PPPD, PPPD_RESTARTS, OFFER_DNS)")
}

// Path is the file the policy was read from.
func (p Policy) Path() string { return p.path }

// why says what the policy file says about key, for a refusal.
func (p Policy) why(key, value string) string {
	switch {
	case !p.exists:
		return "the file does not exist"
	case !p.set[key]:
		return "it does not set " + key
	default:
		return "it says " + key + "=" + value
	}
}

// Check refuses a request outside the policy file, naming the policy key
// that would allow it. It looks at the request only; CheckHost looks at
// the server's interfaces and routes.
func (p Policy) Check(r Request) error {
	if r.Masquerade && !p.AllowMasquerade {
		return fmt.Errorf("masquerade needs ALLOW_MASQUERADE=yes in %s (%s)", p.path, p.why("ALLOW_MASQUERADE", "no"))
	}
	if r.NeedsForwarding() && !p.AllowForwarding {
		return fmt.Errorf("%s needs forwarding, which needs ALLOW_FORWARDING=yes in %s (%s)",
			forwardingCause(r), p.path, p.why("ALLOW_FORWARDING", "no"))
	}
	for _, n := range r.Routes {
		if !inside(n, p.AllowNetworks) {
			return fmt.Errorf("routing %s to the client needs ALLOW_NETWORKS covering it in %s (%s)",
				n, p.path, p.why("ALLOW_NETWORKS", networksString(p.AllowNetworks)))
		}
	}
	if !p.set["ALLOW_PEERS"] {
		return fmt.Errorf("tunnel addresses need ALLOW_PEERS in %s (%s): list the range you hand out, e.g. ALLOW_PEERS=198.51.100.0/24",
			p.path, p.why("ALLOW_PEERS", ""))
	}
	for _, a := range []struct {
		role string
		addr netip.Addr
		v6   bool
	}{{"peer", r.Peer, false}, {"local", r.Local, false}, {"peer", r.Peer6, true}, {"local", r.Local6, true}} {
		if !a.addr.IsValid() && (a.role == "local" && r.Bridge != "" || a.v6 && !r.CarriesIPv6()) {
			continue // a bridge port has no address of its own; a link without IPv6
		}
		if !inside(netip.PrefixFrom(a.addr, a.addr.BitLen()), p.AllowPeers) {
			return fmt.Errorf("%s %s is outside ALLOW_PEERS=%s in %s", a.role, a.addr, networksString(p.AllowPeers), p.path)
		}
	}
	return p.checkMode(r)
}

// checkMode refuses what the tun and ethernet modes add: a shared subnet
// outside ALLOW_PEERS, and a bridge not in ALLOW_BRIDGES.
func (p Policy) checkMode(r Request) error {
	if r.Bridge != "" {
		if !slices.Contains(p.AllowBridges, r.Bridge) {
			return fmt.Errorf("joining bridge %s needs ALLOW_BRIDGES listing it in %s (%s)", r.Bridge, p.path,
				p.why("ALLOW_BRIDGES", strings.Join(p.AllowBridges, ",")))
		}
		if r.NeedsForwarding() {
			return errors.New("a tap in a bridge is on the bridge's LAN: routes, forwarding and masquerade do not apply to it")
		}
		return nil
	}
	for _, lp := range []netip.Prefix{r.LocalPrefix(), r.LocalPrefix6()} {
		if r.EffectiveMode() == ModeEthernet && lp.IsValid() && !inside(lp.Masked(), p.AllowPeers) {
			return fmt.Errorf("subnet %s is outside ALLOW_PEERS=%s in %s", lp.Masked(), networksString(p.AllowPeers), p.path)
		}
	}
	return nil
}

// forwardingCause names what in a request turns forwarding on.
func forwardingCause(r Request) string {
	switch {
	case r.Masquerade:
		return "masquerade"
	case len(r.Routes) > 0:
		return "routing CLIENT_NETWORKS " + networksString(r.Routes)
	default:
		return "reaching networks behind the server (SERVER_NETWORKS, DEFAULT_ROUTE)"
	}
}

func inside(n netip.Prefix, allowed []netip.Prefix) bool {
	for _, a := range allowed {
		if a.Bits() <= n.Bits() && a.Contains(n.Addr()) {
			return true
		}
	}
	return false
}
