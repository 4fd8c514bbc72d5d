package firewall

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// A Masquerade asks that packets from Source leaving through any interface
// other than NotOut get the outgoing interface's address (NAT masquerade).
type Masquerade struct {
	Link   string       // owning link name: [A-Za-z0-9._-]{1,32}
	Source netip.Prefix // IPv4 or IPv6, masked (198.51.100.0/24, not 198.51.100.7/24)
	NotOut string       // interface name (e.g. "ppp0") excluded as output; "" = none
}

// Backend installs and removes masquerade rules and IPv6 source checks
// owned by vpn-pppssh. Each method covers both address families: IPv4 and
// IPv6 rules live in tables of their own family.
type Backend interface {
	// Name is NameNFTables, NameLegacy or NameLegacyChains.
	Name() string
	// Add installs the rule for m. It is idempotent: an identical rule
	// already present is not added twice.
	Add(m Masquerade) error
	// Remove removes the rule for m; a rule that is absent is not an error.
	Remove(m Masquerade) error
	// RemoveLink removes every rule owned by link (crash cleanup),
	// masquerades and source checks of both families. With nftables a
	// table is deleted when it has no rules left.
	RemoveLink(link string) error
	// Rules lists the masquerades installed for link, or all masquerades
	// owned by vpn-pppssh when link is "".
	Rules(link string) ([]Masquerade, error)
	// AddSourceCheck installs the IPv6 source check s. It is idempotent.
	AddSourceCheck(s SourceCheck) error
	// RemoveSourceCheck removes s; one that is absent is not an error.
	RemoveSourceCheck(s SourceCheck) error
	// SourceChecks lists the source checks installed for link, or all of
	// vpn-pppssh's when link is "".
	SourceChecks(link string) ([]SourceCheck, error)
}

// Backend names returned by Backend.Name.
const (
	NameNFTables = "nftables"
	NameLegacy   = "iptables-legacy"
	// NameLegacyChains is legacy iptables on a kernel without the comment
	// match (xt_comment): each link's rules live in a chain of its own,
	// vpn-pppssh-<link>, reached by one jump from POSTROUTING.
	NameLegacyChains = "iptables-legacy (no xt_comment: a chain per link)"
)

// commentPrefix starts the comment of every rule owned by vpn-pppssh.
const commentPrefix = "vpn-pppssh:"

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("invalid firewall rule")

const (
	maxLinkLen   = 32
	maxIfnameLen = 15 // IFNAMSIZ - 1
)

// ValidateLink checks that link is a usable owning link name.
func ValidateLink(link string) error {
	if link == "" || len(link) > maxLinkLen {
		return fmt.Errorf("%w: link name %q must be 1 to %d characters", ErrInvalid, link, maxLinkLen)
	}
	for _, c := range []byte(link) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return fmt.Errorf("%w: link name %q may only contain letters, digits, '.', '_' and '-'", ErrInvalid, link)
		}
	}
	return nil
}

// validateIfname checks name the way the kernel checks interface names.
func validateIfname(name string) error {
	if name == "" || len(name) > maxIfnameLen {
		return fmt.Errorf("%w: interface name %q must be 1 to %d characters", ErrInvalid, name, maxIfnameLen)
	}
	if name == "." || name == ".." {
		return fmt.Errorf("%w: interface name %q is reserved", ErrInvalid, name)
	}
	for _, c := range []byte(name) {
		if c == '/' || c == ':' || c <= ' ' || c == 0x7f {
			return fmt.Errorf("%w: interface name %q may not contain '/', ':', whitespace or control characters", ErrInvalid, name)
		}
	}
	return nil
}

// Validate checks every field of m.
func (m Masquerade) Validate() error {
	if err := ValidateLink(m.Link); err != nil {
		return err
	}
	p := m.Source
	switch {
	case !p.IsValid():
		return fmt.Errorf("%w: source prefix is missing or invalid", ErrInvalid)
	case p.Addr().Is4In6():
		return fmt.Errorf("%w: source %s is an IPv4-mapped IPv6 prefix (use the IPv4 prefix)", ErrInvalid, p)
	case p != p.Masked():
		return fmt.Errorf("%w: source %s has host bits set (use %s)", ErrInvalid, p, p.Masked())
	}
	if m.NotOut != "" {
		if err := validateIfname(m.NotOut); err != nil {
			return err
		}
	}
	return nil
}

// commentFor renders the identity comment carried by the rule for m:
// "vpn-pppssh:<link> src=<cidr>[ notout=<ifname>]".
func commentFor(m Masquerade) string {
	s := commentPrefix + m.Link + " src=" + m.Source.String()
	if m.NotOut != "" {
		s += " notout=" + m.NotOut
	}
	return s
}

// parseComment is the inverse of commentFor. ok is false for comments not
// written by this package.
func parseComment(s string) (m Masquerade, ok bool) {
	rest, found := strings.CutPrefix(s, commentPrefix)
	if !found {
		return Masquerade{}, false
	}
	fields := strings.Fields(rest)
	if len(fields) == 0 {
		return Masquerade{}, false
	}
	m.Link = fields[0]
	for _, f := range fields[1:] {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case rpfKey: // a source check's comment
			return Masquerade{}, false
		case "src":
			p, err := netip.ParsePrefix(v)
			if err != nil {
				return Masquerade{}, false
			}
			m.Source = p
		case "notout":
			m.NotOut = v
		}
	}
	if m.Validate() != nil {
		return Masquerade{}, false
	}
	return m, true
}

// linkOfComment returns the owning link named by a comment of ours, even
// when the rest of the comment does not parse, so that RemoveLink can still
// clean such a rule up.
func linkOfComment(s string) (string, bool) {
	rest, found := strings.CutPrefix(s, commentPrefix)
	if !found {
		return "", false
	}
	link, _, _ := strings.Cut(rest, " ")
	return link, link != ""
}

// Probe picks the nftables backend when the kernel has nftables NAT for the
// ip family, else legacy iptables. IPv6 support (nat and source checks) is
// not probed: a kernel without it fails the IPv6 Add or AddSourceCheck
// with an error that names what is missing. Checking nftables may create the
// vpn-pppssh table and chain and delete them again in one transaction, so
// nothing is left behind. When neither backend works the error names both
// failures.
func Probe() (Backend, error) { return ProbeNS(-1) }

// ProbeNS is Probe for the network namespace nsFD refers to (-1 = the
// calling thread's). nsFD must stay open while the backend is used.
func ProbeNS(nsFD int) (Backend, error) {
	nft, nftErr := NewNFTablesNS(nsFD)
	if nftErr == nil {
		return nft, nil
	}
	leg, legErr := NewLegacyNS(nsFD)
	if legErr == nil {
		return leg, nil
	}
	return nil, fmt.Errorf("probing firewall backends: no usable backend: %w", errors.Join(nftErr, legErr))
}

// NewNFTables returns the nftables backend for the current network
// namespace after checking that the kernel supports it.
func NewNFTables() (Backend, error) { return NewNFTablesNS(-1) }

// NewLegacy returns the legacy iptables backend for the current network
// namespace after checking that the kernel's nat table can be read.
func NewLegacy() (Backend, error) { return NewLegacyNS(-1) }
