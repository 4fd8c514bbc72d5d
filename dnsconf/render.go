package dnsconf

import (
	"net/netip"
	"slices"
	"strings"
)

// nameserver is how resolv.conf names a. An IPv6 link-local address is
// only reachable through the link, so it carries the link's interface as
// its zone (fe80::1%ppp0), which the C library's resolver understands.
func nameserver(a netip.Addr, iface string) string {
	if a.Is6() && a.IsLinkLocalUnicast() {
		a = a.WithZone(iface)
	}
	return a.String()
}

// linkText is the link's settings alone in resolv.conf(5) form, as
// resolvconf(8) takes them on its standard input.
func linkText(c Config) []byte {
	var b strings.Builder
	for _, a := range c.Servers {
		b.WriteString("nameserver " + nameserver(a, c.Iface) + "\n")
	}
	if len(c.Search) > 0 {
		b.WriteString("search " + strings.Join(c.Search, " ") + "\n")
	}
	return []byte(b.String())
}

// header opens the resolv.conf the file backend writes. It names the link,
// so that what two links wrote is never the same text.
func header(c Config) string {
	return "# Written by vpn-pppssh for link " + c.Link + " (" + c.Iface + "): its DNS settings first, then the\n" +
		"# original's. The original comes back when the link goes down.\n"
}

// mergeText is the resolv.conf the file backend writes: the link's
// nameservers first, then the original's lines as they were. With search
// domains, one search line holds the link's and then the original's (the C
// library reads only the last search or domain line, so that is the one
// whose domains follow ours), and the original's search and domain lines
// go. An original nameserver line for one of the link's servers goes too.
// Comments, options and everything else stay, byte for byte and in order.
func mergeText(c Config, orig []byte) []byte {
	lines := splitLines(string(orig))
	var origSearch []string
	for _, l := range lines {
		switch kw, args := keyword(l); kw {
		case "search":
			origSearch = args
		case "domain":
			origSearch = args[:min(len(args), 1)]
		}
	}
	var b strings.Builder
	b.WriteString(header(c))
	for _, a := range c.Servers {
		b.WriteString("nameserver " + nameserver(a, c.Iface) + "\n")
	}
	if len(c.Search) > 0 {
		search := slices.Clone(c.Search)
		for _, d := range origSearch {
			if !slices.ContainsFunc(search, func(s string) bool { return strings.EqualFold(s, strings.TrimSuffix(d, ".")) }) {
				search = append(search, d)
			}
		}
		b.WriteString("search " + strings.Join(search, " ") + "\n")
	}
	for _, l := range lines {
		kw, args := keyword(l)
		if len(c.Search) > 0 && (kw == "search" || kw == "domain") {
			continue
		}
		if kw == "nameserver" && len(args) > 0 && ours(c, args[0]) {
			continue
		}
		b.WriteString(l + "\n")
	}
	return []byte(b.String())
}

// ours reports whether the nameserver s of the original is one of the
// link's servers.
func ours(c Config, s string) bool {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" && a.Zone() != c.Iface {
		return false // fe80::1%eth0 is another server than fe80::1 on the link
	}
	return slices.Contains(c.Servers, a.WithZone("").Unmap())
}

// splitLines splits text into lines without their "\n"; a last line
// without one is a line too.
func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// keyword returns the keyword of a resolv.conf line and its arguments, as
// the C library reads it: the keyword starts the line and is followed by
// a space or a tab; comment lines start with '#' or ';'.
func keyword(line string) (string, []string) {
	for _, kw := range []string{"nameserver", "search", "domain"} {
		if rest, ok := strings.CutPrefix(line, kw); ok && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
			return kw, strings.Fields(rest)
		}
	}
	return "", nil
}
