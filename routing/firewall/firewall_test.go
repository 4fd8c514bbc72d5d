package firewall

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	src := netip.MustParsePrefix("198.51.100.2/32")
	tests := []struct {
		name    string
		m       Masquerade
		wantErr string // "" = valid
	}{
		{"ok", Masquerade{Link: "lab0", Source: src, NotOut: "ppp0"}, ""},
		{"ok no notout", Masquerade{Link: "a.b_c-D9", Source: netip.MustParsePrefix("198.51.100.0/24")}, ""},
		{"ok default route", Masquerade{Link: "x", Source: netip.MustParsePrefix("0.0.0.0/0")}, ""},
		{"ok 15-char ifname", Masquerade{Link: "x", Source: src, NotOut: "abcdefghijklmno"}, ""},
		{"ok 32-char link", Masquerade{Link: strings.Repeat("l", 32), Source: src}, ""},
		{"empty link", Masquerade{Source: src}, "link name"},
		{"long link", Masquerade{Link: strings.Repeat("l", 33), Source: src}, "link name"},
		{"link with space", Masquerade{Link: "a b", Source: src}, "link name"},
		{"link with slash", Masquerade{Link: "a/b", Source: src}, "link name"},
		{"missing source", Masquerade{Link: "x"}, "source prefix"},
		{"ok ipv6 source", Masquerade{Link: "x", Source: netip.MustParsePrefix("2001:db8::/32"), NotOut: "ppp0"}, ""},
		{"ok ipv6 host", Masquerade{Link: "x", Source: netip.MustParsePrefix("2001:db8::2/128")}, ""},
		{"ok ipv6 default", Masquerade{Link: "x", Source: netip.MustParsePrefix("::/0")}, ""},
		{"ipv6 host bits", Masquerade{Link: "x", Source: netip.MustParsePrefix("2001:db8::7/64")}, "host bits"},
		{"mapped source", Masquerade{Link: "x", Source: netip.MustParsePrefix("::ffff:198.51.100.2/128")}, "IPv4-mapped"},
		{"host bits", Masquerade{Link: "x", Source: netip.MustParsePrefix("198.51.100.7/24")}, "host bits"},
		{"long ifname", Masquerade{Link: "x", Source: src, NotOut: "abcdefghijklmnop"}, "interface name"},
		{"ifname slash", Masquerade{Link: "x", Source: src, NotOut: "pp/0"}, "interface name"},
		{"ifname space", Masquerade{Link: "x", Source: src, NotOut: "pp 0"}, "interface name"},
		{"ifname tab", Masquerade{Link: "x", Source: src, NotOut: "pp\t0"}, "interface name"},
		{"ifname dot", Masquerade{Link: "x", Source: src, NotOut: "."}, "interface name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.m.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate() = %v, want error containing %q", err, tc.wantErr)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate() = %v, does not wrap ErrInvalid", err)
			}
		})
	}
}

func TestCommentRoundTrip(t *testing.T) {
	for _, m := range []Masquerade{
		{Link: "lab0", Source: netip.MustParsePrefix("198.51.100.2/32"), NotOut: "ppp0"},
		{Link: "lab-1.x_y", Source: netip.MustParsePrefix("198.51.100.0/25")},
		{Link: strings.Repeat("l", 32), Source: netip.MustParsePrefix("0.0.0.0/0"), NotOut: "abcdefghijklmno"},
	} {
		c := commentFor(m)
		if len(c) > 127 {
			t.Errorf("comment %q is %d bytes, too long for the nft tool", c, len(c))
		}
		got, ok := parseComment(c)
		if !ok || got != m {
			t.Errorf("parseComment(%q) = %+v, %v; want %+v", c, got, ok, m)
		}
		link, ok := linkOfComment(c)
		if !ok || link != m.Link {
			t.Errorf("linkOfComment(%q) = %q, %v; want %q", c, link, ok, m.Link)
		}
	}
	if got := commentFor(Masquerade{Link: "lab0", Source: netip.MustParsePrefix("198.51.100.2/32"), NotOut: "ppp0"}); got != "vpn-pppssh:lab0 src=198.51.100.2/32 notout=ppp0" {
		t.Errorf("commentFor = %q", got)
	}
}

func TestParseCommentRejects(t *testing.T) {
	for _, c := range []string{
		"",
		"someone else's rule",
		"vpn-pppssh:",
		"vpn-pppssh:lab0",                     // no source
		"vpn-pppssh:lab0 src=nonsense",        // bad source
		"vpn-pppssh:lab0 src=198.51.100.7/24", // host bits
		"vpn-pppssh:bad/link src=198.51.100.2/32", // bad link
		"vpn-pppssh:lab0 src=198.51.100.2/32 notout=a/b",
	} {
		if m, ok := parseComment(c); ok {
			t.Errorf("parseComment(%q) = %+v, want rejection", c, m)
		}
	}
	// RemoveLink still finds the owner of a comment it cannot fully parse.
	if l, ok := linkOfComment("vpn-pppssh:lab0 src=nonsense"); !ok || l != "lab0" {
		t.Errorf("linkOfComment = %q, %v", l, ok)
	}
}
