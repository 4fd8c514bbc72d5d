package dnsconf

import (
	"strings"
	"testing"
)

func TestLinkText(t *testing.T) {
	c := Config{Link: "office", Iface: "ppp0", Servers: addrs("198.51.100.2", "fe80::1", "2001:db8::53"), Search: []string{"example.org", "lab"}}
	want := "nameserver 198.51.100.2\nnameserver fe80::1%ppp0\nnameserver 2001:db8::53\nsearch example.org lab\n"
	if got := string(linkText(c)); got != want {
		t.Errorf("linkText:\n%s\nwant:\n%s", got, want)
	}
	c.Search = nil
	if got := string(linkText(c)); strings.Contains(got, "search") {
		t.Errorf("no domains, yet:\n%s", got)
	}
}

func TestMergeText(t *testing.T) {
	hdr := header(Config{Link: "office", Iface: "ppp0"})
	for _, tc := range []struct {
		name    string
		servers []string
		search  []string
		orig    string
		want    string // after the header
	}{
		{
			name:    "servers first, the original's lines kept in order",
			servers: []string{"198.51.100.2"},
			orig:    "# from DHCP\nnameserver 192.0.2.53\noptions edns0 trust-ad\nsearch home.arpa\n",
			want:    "nameserver 198.51.100.2\n# from DHCP\nnameserver 192.0.2.53\noptions edns0 trust-ad\nsearch home.arpa\n",
		},
		{
			name:    "the link's domains before the original's, on one line",
			servers: []string{"198.51.100.2"},
			search:  []string{"example.org", "lab"},
			orig:    "nameserver 192.0.2.53\nsearch home.arpa lab\noptions rotate\n",
			want:    "nameserver 198.51.100.2\nsearch example.org lab home.arpa\nnameserver 192.0.2.53\noptions rotate\n",
		},
		{
			name:   "the last of search and domain counts, as for the C library",
			search: []string{"example.org"},
			orig:   "search first.example\ndomain last.example\nnameserver 192.0.2.53\n",
			want:   "search example.org last.example\nnameserver 192.0.2.53\n",
		},
		{
			name:   "a domain's case and final dot do not make it another",
			search: []string{"example.org"},
			orig:   "search EXAMPLE.org. other.example\n",
			want:   "search example.org other.example\n",
		},
		{
			name:    "an original nameserver line for one of ours goes",
			servers: []string{"198.51.100.2", "2001:db8::53"},
			orig:    "nameserver 198.51.100.2\nnameserver 2001:db8:0::53\nnameserver 192.0.2.53\n",
			want:    "nameserver 198.51.100.2\nnameserver 2001:db8::53\nnameserver 192.0.2.53\n",
		},
		{
			name:    "no original",
			servers: []string{"198.51.100.2"},
			search:  []string{"example.org"},
			orig:    "",
			want:    "nameserver 198.51.100.2\nsearch example.org\n",
		},
		{
			name:    "no final newline, CRLF and odd lines are kept as they are",
			servers: []string{"198.51.100.2"},
			orig:    "  search indented.example\nnameserverx 1.2.3.4\noptions ndots:2\r\n; comment",
			want:    "nameserver 198.51.100.2\n  search indented.example\nnameserverx 1.2.3.4\noptions ndots:2\r\n; comment\n",
		},
		{
			name:    "a link-local server carries the interface",
			servers: []string{"fe80::1"},
			orig:    "nameserver fe80::1%eth0\n",
			want:    "nameserver fe80::1%ppp0\nnameserver fe80::1%eth0\n",
		},
	} {
		c := Config{Link: "office", Iface: "ppp0", Servers: addrs(tc.servers...), Search: tc.search}
		got := string(mergeText(c, []byte(tc.orig)))
		if !strings.HasPrefix(got, hdr) {
			t.Errorf("%s: no header:\n%s", tc.name, got)
			continue
		}
		if got = strings.TrimPrefix(got, hdr); got != tc.want {
			t.Errorf("%s:\n%s\nwant:\n%s", tc.name, got, tc.want)
		}
	}
}
