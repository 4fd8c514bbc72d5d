package firewall

import (
	"fmt"
	"strings"
)

// A SourceCheck drops IPv6 packets arriving on Iface whose source address
// this host would not route back out through Iface: strict reverse-path
// filtering, the IPv6 counterpart of the rp_filter=1 sysctl, which IPv6
// does not have. Link-local sources pass, since the link's fe80::/64 route
// leads back through Iface.
type SourceCheck struct {
	Link  string // owning link name: [A-Za-z0-9._-]{1,32}
	Iface string // the link's interface, e.g. "ppp0"
}

// rpfKey names the checked interface in a source check's comment.
const rpfKey = "rpf"

// Validate checks every field of s.
func (s SourceCheck) Validate() error {
	if err := ValidateLink(s.Link); err != nil {
		return err
	}
	return validateIfname(s.Iface)
}

// sourceCheckComment renders the identity comment carried by the rule for
// s: "vpn-pppssh:<link> rpf=<iface>".
func sourceCheckComment(s SourceCheck) string {
	return commentPrefix + s.Link + " " + rpfKey + "=" + s.Iface
}

// parseSourceCheckComment is the inverse of sourceCheckComment. ok is false
// for any other comment, a masquerade's included.
func parseSourceCheckComment(c string) (s SourceCheck, ok bool) {
	rest, found := strings.CutPrefix(c, commentPrefix)
	if !found {
		return SourceCheck{}, false
	}
	fields := strings.Fields(rest)
	if len(fields) != 2 {
		return SourceCheck{}, false
	}
	k, v, _ := strings.Cut(fields[1], "=")
	if k != rpfKey {
		return SourceCheck{}, false
	}
	s = SourceCheck{Link: fields[0], Iface: v}
	if s.Validate() != nil {
		return SourceCheck{}, false
	}
	return s, true
}

// errSourceCheck names the source check s in an error about action
// ("adding", "removing").
func errSourceCheck(action string, s SourceCheck, err error) error {
	return fmt.Errorf("%s source check on %s for link %s: %w", action, s.Iface, s.Link, err)
}
