package firewall

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestSourceCheckValidate(t *testing.T) {
	for _, tc := range []struct {
		s       SourceCheck
		wantErr string
	}{
		{SourceCheck{Link: "lab0", Iface: "ppp0"}, ""},
		{SourceCheck{Link: strings.Repeat("l", 32), Iface: "abcdefghijklmno"}, ""},
		{SourceCheck{Iface: "ppp0"}, "link name"},
		{SourceCheck{Link: "a b", Iface: "ppp0"}, "link name"},
		{SourceCheck{Link: "lab0"}, "interface name"},
		{SourceCheck{Link: "lab0", Iface: "abcdefghijklmnop"}, "interface name"},
		{SourceCheck{Link: "lab0", Iface: "pp/0"}, "interface name"},
	} {
		err := tc.s.Validate()
		if tc.wantErr == "" {
			if err != nil {
				t.Errorf("%+v: Validate() = %v", tc.s, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: Validate() = %v, want ErrInvalid about %s", tc.s, err, tc.wantErr)
		}
	}
}

// Source check and masquerade comments round-trip, and neither parser
// takes the other's comment.
func TestSourceCheckComment(t *testing.T) {
	s := SourceCheck{Link: "lab0", Iface: "ppp0"}
	c := sourceCheckComment(s)
	if c != "vpn-pppssh:lab0 rpf=ppp0" {
		t.Fatalf("sourceCheckComment = %q", c)
	}
	if got, ok := parseSourceCheckComment(c); !ok || got != s {
		t.Fatalf("parseSourceCheckComment(%q) = %+v, %v", c, got, ok)
	}
	if m, ok := parseComment(c); ok {
		t.Fatalf("parseComment took a source check's comment: %+v", m)
	}
	if l, ok := linkOfComment(c); !ok || l != "lab0" {
		t.Fatalf("linkOfComment(%q) = %q, %v", c, l, ok)
	}
	for _, m := range []Masquerade{
		{Link: "lab0", Source: netip.MustParsePrefix("198.51.100.2/32"), NotOut: "ppp0"},
		{Link: "lab0", Source: netip.MustParsePrefix("2001:db8::/32"), NotOut: "ppp0"},
	} {
		mc := commentFor(m)
		if got, ok := parseComment(mc); !ok || got != m {
			t.Errorf("parseComment(%q) = %+v, %v", mc, got, ok)
		}
		if got, ok := parseSourceCheckComment(mc); ok {
			t.Errorf("parseSourceCheckComment took a masquerade's comment %q: %+v", mc, got)
		}
	}
	for _, bad := range []string{
		"", "rpf=ppp0", "vpn-pppssh:lab0", "vpn-pppssh:lab0 rpf=", "vpn-pppssh:lab0 rpf=a/b",
		"vpn-pppssh:lab0 rpf=ppp0 src=2001:db8::/32", "vpn-pppssh:bad/link rpf=ppp0",
		"vpn-pppssh:lab0 src=2001:db8::/32 rpf=ppp0",
	} {
		if got, ok := parseSourceCheckComment(bad); ok {
			t.Errorf("parseSourceCheckComment(%q) = %+v, want rejection", bad, got)
		}
		if got, ok := parseComment(bad); ok {
			t.Errorf("parseComment(%q) = %+v, want rejection", bad, got)
		}
	}
}
