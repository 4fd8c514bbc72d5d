package dnsconf

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

func TestParseServers(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // the addresses joined by " ", "peer", or "error: " and what the message must contain
	}{
		{"", ""},
		{"   ", ""},
		{"198.51.100.2", "198.51.100.2"},
		{"198.51.100.2 2001:db8::53", "198.51.100.2 2001:db8::53"},
		{"198.51.100.2,2001:db8::53", "198.51.100.2 2001:db8::53"},
		{" 198.51.100.2 , 198.51.100.3 ,", "198.51.100.2 198.51.100.3"},
		{"198.51.100.2 198.51.100.2", "198.51.100.2"},
		{"::ffff:198.51.100.2", "198.51.100.2"},
		{"fe80::1", "fe80::1"},
		{"peer", "peer"},
		{" PEER ", "peer"},
		{"peer 198.51.100.2", `error: DNS server "peer": "peer" stands alone`},
		{"198.51.100.2,peer", `error: DNS server "peer": "peer" stands alone`},
		{"peer peer", `error: "peer" stands alone`},
		{"198.51.100", `error: DNS server "198.51.100": not an IPv4 or IPv6 address`},
		{"dns.example.org", `error: DNS server "dns.example.org": not an IPv4 or IPv6 address`},
		{"198.51.100.2/32", `error: not an IPv4 or IPv6 address`},
		{"198.51.100.2\t198.51.100.3", `error: DNS server "198.51.100.2\t198.51.100.3": not an IPv4`},
		{"198.51.100.2\nnameserver 203.0.113.66", `error: DNS server "198.51.100.2\nnameserver": not an IPv4`},
		{"$(reboot)", `error: DNS server "$(reboot)": not an IPv4`},
		{"198.51.100.2;reboot", `error: not an IPv4`},
		{"\x1b]0;owned\x07", `error: DNS server "\x1b]0;owned\a": not an IPv4`},
		{"fe80::1%eth0", `error: DNS server "fe80::1%eth0": give the address without a %zone`},
		{"0.0.0.0", `error: DNS server "0.0.0.0": the unspecified address`},
		{"::", `error: DNS server "::": the unspecified address`},
		{"224.0.0.251", `error: DNS server "224.0.0.251": a multicast address`},
		{"ff02::fb", `error: a multicast address`},
		{"255.255.255.255", `error: the broadcast address`},
		{"198.51.100.1 198.51.100.2 198.51.100.3 198.51.100.4 198.51.100.5 198.51.100.6 198.51.100.7 198.51.100.8 198.51.100.9",
			`error: 9 addresses, at most 8`},
	} {
		got, peer, err := ParseServers(tc.in)
		var s string
		switch {
		case err != nil:
			s = "error: " + err.Error()
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("ParseServers(%q): %v does not match ErrInvalid", tc.in, err)
			}
			if got != nil || peer {
				t.Errorf("ParseServers(%q): an error with %v, peer %v", tc.in, got, peer)
			}
		case peer:
			s = "peer"
			if got != nil {
				t.Errorf("ParseServers(%q): peer with addresses %v", tc.in, got)
			}
		default:
			s = strings.Trim(fmt.Sprint(got), "[]")
		}
		if strings.HasPrefix(tc.want, "error: ") {
			if !strings.HasPrefix(s, "error: ") || !strings.Contains(s, strings.TrimPrefix(tc.want, "error: ")) {
				t.Errorf("ParseServers(%q) = %s; want an %s", tc.in, s, tc.want)
			}
			continue
		}
		if s != tc.want {
			t.Errorf("ParseServers(%q) = %s, want %s", tc.in, s, tc.want)
		}
	}
}

func TestParseSearch(t *testing.T) {
	long := strings.Repeat("a", 63)
	tooLong := strings.Repeat(long+".", 4) + "org" // 4*64+3 = 259
	for _, tc := range []struct {
		in   string
		want string // the domains joined by " ", or "error: " and what the message must contain
	}{
		{"", ""},
		{"example.org", "example.org"},
		{"Example.ORG.", "example.org"},
		{"corp", "corp"},
		{"example.org, corp.example.org lab", "example.org corp.example.org lab"},
		{"example.org example.org EXAMPLE.org.", "example.org"},
		{"xn--bcher-kva.example", "xn--bcher-kva.example"},
		{"a-b.c0", "a-b.c0"},
		{long + ".org", long + ".org"},
		{"a.b\tc", `error: search domain "a.b\tc": contains a control character`},
		{"example.org\nnameserver 203.0.113.66", `error: search domain "example.org\nnameserver": contains a control character`},
		{"exa\x00mple.org", `error: contains a control character`},
		{"exa\x7fmple.org", `error: contains a control character`},
		{"\x1b[31mred", `error: search domain "\x1b[31mred": contains a control character`},
		{"bücher.example", `error: search domain "bücher.example": contains a character that is not ASCII`},
		{"example.org\u202e", `error: not ASCII`},
		{"$(reboot).org", `error: search domain "$(reboot).org": contains '$': only letters, digits, '-' and '.'`},
		{"a;b", `error: contains ';'`},
		{"a/b", `error: contains '/'`},
		{"_srv.example.org", `error: contains '_'`},
		{"*.example.org", `error: contains '*'`},
		{"~example.org", `error: contains '~'`},
		{".", `error: search domain ".": the root domain`},
		{"..", `error: empty label`},
		{".example.org", `error: search domain ".example.org": has an empty label`},
		{"example..org", `error: has an empty label`},
		{"-example.org", `error: starts or ends with '-'`},
		{"example-.org", `error: starts or ends with '-'`},
		{long + "a.org", `error: has a label longer than 63`},
		{tooLong, `error: longer than 253 characters`},
		{"198.51.100.2", `error: search domain "198.51.100.2": ends in a numeric label`},
		{"example.123", `error: ends in a numeric label`},
		{"a b c d e f g h i", `error: 9 domains, at most 8`},
	} {
		got, err := ParseSearch(tc.in)
		s := strings.Join(got, " ")
		if err != nil {
			s = "error: " + err.Error()
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("ParseSearch(%q): %v does not match ErrInvalid", tc.in, err)
			}
			var ie *InvalidError
			if !errors.As(err, &ie) || ie.What != "search domain" {
				t.Errorf("ParseSearch(%q): %v is not an InvalidError about a search domain", tc.in, err)
			}
		}
		if strings.HasPrefix(tc.want, "error: ") {
			if err == nil || !strings.Contains(s, strings.TrimPrefix(tc.want, "error: ")) {
				t.Errorf("ParseSearch(%q) = %s; want an %s", tc.in, s, tc.want)
			}
			continue
		}
		if s != tc.want {
			t.Errorf("ParseSearch(%q) = %s, want %s", tc.in, s, tc.want)
		}
	}
}

// The errors quote the value with %q: what a hostile server sent is shown,
// never interpreted by the terminal.
func TestErrorsShowHostileTextSafely(t *testing.T) {
	for _, in := range []string{"\x1b]0;pwned\x07x.org", "x.org\rnameserver 1.2.3.4", "a\u202eb.org"} {
		_, err := ParseSearch(in)
		if err == nil {
			t.Fatalf("ParseSearch(%q) accepted", in)
		}
		if msg := err.Error(); strings.ContainsAny(msg, "\x1b\x07\r\n\u202e") {
			t.Errorf("the error of %q carries control characters: %q", in, msg)
		}
	}
}

func TestPeerServers(t *testing.T) {
	got, err := PeerServers("198.51.100.2", "", "198.51.100.2", "2001:db8::53")
	if err != nil || fmt.Sprint(got) != "[198.51.100.2 2001:db8::53]" {
		t.Errorf("PeerServers = %v, %v", got, err)
	}
	if got, err := PeerServers("", ""); err != nil || got != nil {
		t.Errorf("none offered: %v, %v", got, err)
	}
	// One variable holds one address: a list, or the word peer, is not
	// what pppd exports.
	for _, bad := range []string{"198.51.100.2 198.51.100.3", "198.51.100.2,198.51.100.3", "peer", "0.0.0.0", " 198.51.100.2", "198.51.100.2\n"} {
		if got, err := PeerServers("198.51.100.9", bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("PeerServers(%q) = %v, %v; want ErrInvalid", bad, got, err)
		}
	}
}

func TestNormalize(t *testing.T) {
	good := Config{Link: "office", Iface: "ppp0", Servers: addrs("198.51.100.2", "::ffff:198.51.100.2", "2001:db8::53"), Search: []string{"Example.org.", "example.org", "lab"}}
	c, err := good.normalize()
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(c.Servers, c.Search); got != "[198.51.100.2 2001:db8::53] [example.org lab]" {
		t.Errorf("normalised to %s", got)
	}
	for _, tc := range []struct {
		mut  func(*Config)
		want string
	}{
		{func(c *Config) { c.Link = "../x" }, `link name "../x": not a valid link name`},
		{func(c *Config) { c.Link = "" }, `link name ""`},
		{func(c *Config) { c.Iface = "" }, `interface "": empty`},
		{func(c *Config) { c.Iface = "-d" }, `interface "-d": must start with a letter or digit`},
		{func(c *Config) { c.Iface = "ppp0/../x" }, `interface "ppp0/../x": only letters`},
		{func(c *Config) { c.Iface = "ppp 0" }, `only letters`},
		{func(c *Config) { c.Iface = "averyveryverylong0" }, `longer than 15 bytes`},
		{func(c *Config) { c.Servers = []netip.Addr{{}} }, `DNS server "": no address`},
		{func(c *Config) { c.Servers = addrs("fe80::1%ppp0") }, `without a %zone`},
		{func(c *Config) { c.Servers = addrs("0.0.0.0") }, `the unspecified address`},
		{func(c *Config) { c.Search = []string{"a b"} }, `search domain "a b": contains a space`},
		{func(c *Config) { c.Search = []string{"ok.org", "x\n"} }, `search domain "x\n": contains a control character`},
	} {
		c := good
		tc.mut(&c)
		_, err := c.normalize()
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v; want ErrInvalid saying %s", c, err, tc.want)
		}
		if _, err := newSettings(c, testHost(t)); !errors.Is(err, ErrInvalid) {
			t.Errorf("newSettings(%+v): %v; want ErrInvalid", c, err)
		}
	}
}
