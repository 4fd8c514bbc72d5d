package dnsconf

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/vpn-pppssh/vpn-pppssh/internal/rundir"
)

// Config is what a link wants of the host's resolver while it is up.
type Config struct {
	Link    string       // the link's name (rundir.ValidName); names the state file
	Iface   string       // the link's interface: ppp0, tun0
	Servers []netip.Addr // DNS servers reached through Iface, in order of preference
	Search  []string     // search domains, put before the host's own
}

// MaxServers and MaxSearch bound the lists a Config may hold. The C
// library reads only the first three nameserver lines of resolv.conf
// (MAXNS); the bounds are there to refuse a runaway value, not to be met.
const (
	MaxServers = 8
	MaxSearch  = 8
)

// maxDomain is the longest domain name in text form, without the final
// dot (RFC 1035 section 2.3.4: 255 octets on the wire).
const maxDomain = 253

// ErrInvalid is matched (errors.Is) by every error of a value refused here.
var ErrInvalid = errors.New("invalid DNS setting")

// InvalidError names a value that was refused and why. The value is
// quoted with %q, so control characters in it are shown, never sent to the
// terminal.
type InvalidError struct {
	What   string // "DNS server", "search domain", "interface", "link name"
	Value  string
	Reason string
}

func (e *InvalidError) Error() string {
	return fmt.Sprintf("%s %q: %s", e.What, e.Value, e.Reason)
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *InvalidError) Unwrap() error { return ErrInvalid }

func invalid(what, value, reason string) error {
	return &InvalidError{What: what, Value: value, Reason: reason}
}

// peerWord is the value of DNS= that asks for the servers the peer's pppd
// offered (pppd(8), usepeerdns: DNS1 and DNS2 in the ip-up environment).
const peerWord = "peer"

// ParseServers parses the DNS= value of a link's configuration: addresses
// (IPv4 or IPv6) separated by spaces or commas, or the single word "peer",
// which asks for the servers the server's pppd offers (usepeerdns). An
// empty value means no DNS servers. Addresses come back normalised (IPv4
// mapped into IPv6 unmapped) without repeats.
func ParseServers(value string) (servers []netip.Addr, peer bool, err error) {
	fields := splitList(value)
	if len(fields) == 1 && strings.EqualFold(fields[0], peerWord) {
		return nil, true, nil
	}
	for _, f := range fields {
		if strings.EqualFold(f, peerWord) {
			return nil, false, invalid("DNS server", f, `"peer" stands alone: it cannot be mixed with addresses`)
		}
		a, err := parseServer(f)
		if err != nil {
			return nil, false, err
		}
		if !slices.Contains(servers, a) {
			servers = append(servers, a)
		}
	}
	if len(servers) > MaxServers {
		return nil, false, invalid("DNS server", value, fmt.Sprintf("%d addresses, at most %d", len(servers), MaxServers))
	}
	return servers, false, nil
}

// PeerServers checks the DNS server addresses the server's pppd offered,
// as pppd passes them to ip-up in DNS1 and DNS2 (pppd(8), usepeerdns):
// each value is one address, or empty when not offered. They come from
// the server, so anything but one plain address is refused.
func PeerServers(values ...string) ([]netip.Addr, error) {
	var servers []netip.Addr
	for _, v := range values {
		if v == "" {
			continue
		}
		a, err := parseServer(v)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(servers, a) {
			servers = append(servers, a)
		}
	}
	if len(servers) > MaxServers {
		return nil, invalid("DNS server", strings.Join(values, " "), fmt.Sprintf("%d addresses, at most %d", len(servers), MaxServers))
	}
	return servers, nil
}

func parseServer(s string) (netip.Addr, error) {
	if strings.Contains(s, "%") {
		return netip.Addr{}, invalid("DNS server", s, "give the address without a %zone: the link's interface is its zone")
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, invalid("DNS server", s, "not an IPv4 or IPv6 address")
	}
	a = a.Unmap()
	if err := checkServer(a); err != nil {
		return netip.Addr{}, err
	}
	return a, nil
}

// checkServer refuses what cannot be a DNS server's unicast address.
func checkServer(a netip.Addr) error {
	switch {
	case !a.IsValid():
		return invalid("DNS server", "", "no address")
	case a.Zone() != "":
		return invalid("DNS server", a.String(), "give the address without a %zone: the link's interface is its zone")
	case a.IsUnspecified():
		return invalid("DNS server", a.String(), "the unspecified address")
	case a.IsMulticast():
		return invalid("DNS server", a.String(), "a multicast address")
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return invalid("DNS server", a.String(), "the broadcast address")
	}
	return nil
}

// ParseSearch parses the DNS_SEARCH= value of a link's configuration:
// domain names separated by spaces or commas. Each must be a plain domain
// in hostname syntax (letters, digits and '-' in labels of at most 63
// characters, joined by dots); a final dot is dropped and letters are made
// lower case. Anything else is refused, naming the value and why.
func ParseSearch(value string) ([]string, error) {
	var out []string
	for _, f := range splitList(value) {
		d, err := checkDomain(f)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	if len(out) > MaxSearch {
		return nil, invalid("search domain", value, fmt.Sprintf("%d domains, at most %d", len(out), MaxSearch))
	}
	return out, nil
}

// splitList splits at spaces and commas only: a tab, newline or any other
// control character stays inside a field, where the check refuses it.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' })
}

// checkDomain returns d in canonical form (lower case, no final dot), or
// an error saying why it is not a plain domain name.
func checkDomain(d string) (string, error) {
	if d == "" {
		return "", invalid("search domain", d, "empty")
	}
	for i := 0; i < len(d); i++ {
		c := d[i]
		switch {
		case c == ' ':
			return "", invalid("search domain", d, "contains a space")
		case c < ' ' || c == 0x7f:
			return "", invalid("search domain", d, "contains a control character")
		case c >= 0x80:
			return "", invalid("search domain", d, "contains a character that is not ASCII (write an internationalised name in its xn-- form)")
		case c != '.' && c != '-' && !alnum(c):
			return "", invalid("search domain", d, fmt.Sprintf("contains %q: only letters, digits, '-' and '.' are allowed", c))
		}
	}
	name := strings.ToLower(strings.TrimSuffix(d, "."))
	if name == "" {
		return "", invalid("search domain", d, "the root domain is not a search domain")
	}
	if len(name) > maxDomain {
		return "", invalid("search domain", d, fmt.Sprintf("longer than %d characters", maxDomain))
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		switch {
		case l == "":
			return "", invalid("search domain", d, "has an empty label (two dots, or a leading dot)")
		case len(l) > 63:
			return "", invalid("search domain", d, "has a label longer than 63 characters")
		case l[0] == '-' || l[len(l)-1] == '-':
			return "", invalid("search domain", d, "has a label that starts or ends with '-'")
		}
	}
	if last := labels[len(labels)-1]; strings.Trim(last, "0123456789") == "" {
		return "", invalid("search domain", d, "ends in a numeric label: an address, not a domain")
	}
	return name, nil
}

func alnum(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' }

// checkIface applies the kernel's rules for interface names (at most 15
// bytes) and more: ASCII letters, digits, '.', '_' and '-', starting with
// a letter or digit, since the name becomes a resolvconf record name and
// an argument of resolvconf, where a leading '-' would read as an option.
func checkIface(name string) error {
	switch {
	case name == "":
		return invalid("interface", name, "empty")
	case len(name) > 15:
		return invalid("interface", name, "longer than 15 bytes")
	case !alnum(name[0]):
		return invalid("interface", name, "must start with a letter or digit")
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !alnum(c) && c != '.' && c != '_' && c != '-' {
			return invalid("interface", name, "only letters, digits, '.', '_' and '-' are allowed")
		}
	}
	return nil
}

// normalize checks c and returns it in canonical form: servers unmapped
// and without repeats, domains lower case without a final dot or repeats.
// It never touches the host.
func (c Config) normalize() (Config, error) {
	if !rundir.ValidName(c.Link) {
		return Config{}, invalid("link name", c.Link, "not a valid link name (1-32 letters, digits, '.', '_' or '-', starting with a letter or digit)")
	}
	if err := checkIface(c.Iface); err != nil {
		return Config{}, err
	}
	out := Config{Link: c.Link, Iface: c.Iface}
	for _, a := range c.Servers {
		a = a.Unmap()
		if err := checkServer(a); err != nil {
			return Config{}, err
		}
		if !slices.Contains(out.Servers, a) {
			out.Servers = append(out.Servers, a)
		}
	}
	if len(out.Servers) > MaxServers {
		return Config{}, invalid("DNS server", fmt.Sprint(c.Servers), fmt.Sprintf("%d addresses, at most %d", len(out.Servers), MaxServers))
	}
	for _, d := range c.Search {
		d, err := checkDomain(d)
		if err != nil {
			return Config{}, err
		}
		if !slices.Contains(out.Search, d) {
			out.Search = append(out.Search, d)
		}
	}
	if len(out.Search) > MaxSearch {
		return Config{}, invalid("search domain", strings.Join(c.Search, " "), fmt.Sprintf("%d domains, at most %d", len(out.Search), MaxSearch))
	}
	return out, nil
}

// empty reports whether c asks for nothing.
func (c Config) empty() bool { return len(c.Servers) == 0 && len(c.Search) == 0 }
