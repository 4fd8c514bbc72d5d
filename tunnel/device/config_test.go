package device

import (
	"net/netip"
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	p4 := netip.MustParsePrefix("192.0.2.1/32")
	peer4 := netip.MustParseAddr("192.0.2.2")
	for _, tc := range []struct {
		cfg  Config
		want string // "" for valid, else a part of the error
	}{
		{Config{Kind: TUN}, ""},
		{Config{Kind: TAP, Name: "tap-vpn.0_x"}, ""},
		{Config{Kind: TUN, Name: "abcdefghijklmno", MTU: 1400, Addr: p4, Peer: peer4}, ""},
		{Config{Kind: TUN, Addr: netip.MustParsePrefix("2001:db8::1/128"), Peer: netip.MustParseAddr("2001:db8::2")}, ""},
		{Config{Kind: TAP, Addr: netip.MustParsePrefix("203.0.113.50/24"), Bridge: "br0"}, ""},
		{Config{Kind: TAP, Bridge: "br0"}, ""},
		{Config{MTU: 68, Kind: TAP}, ""},

		{Config{}, "device kind 0"},
		{Config{Kind: 3}, "device kind 3"},
		{Config{Kind: TUN, Name: "abcdefghijklmnop"}, "longer than 15"},
		{Config{Kind: TUN, Name: "."}, `"."`},
		{Config{Kind: TUN, Name: ".."}, `".."`},
		{Config{Kind: TUN, Name: "a/b"}, `"a/b": byte 1`},
		{Config{Kind: TUN, Name: "a:b"}, "byte 1"},
		{Config{Kind: TUN, Name: "a b"}, "byte 1"},
		{Config{Kind: TUN, Name: "a\tb"}, `"a\tb"`},
		{Config{Kind: TUN, Name: "a\nb"}, `"a\nb"`},
		{Config{Kind: TUN, Name: "tun%d"}, "byte 3"},
		{Config{Kind: TUN, Name: "tün"}, "byte 1"},
		{Config{Kind: TUN, Name: "a\x1b[2Jb"}, `"a\x1b[2Jb"`},
		{Config{Kind: TUN, MTU: 67}, "MTU 67"},
		{Config{Kind: TUN, MTU: 65536}, "MTU 65536"},
		{Config{Kind: TUN, MTU: -1}, "MTU -1"},
		{Config{Kind: TUN, Addr: p4}, "needs both or neither"},
		{Config{Kind: TUN, Peer: peer4}, "needs both or neither"},
		{Config{Kind: TUN, Addr: netip.MustParsePrefix("192.0.2.1/24"), Peer: peer4}, "single host"},
		{Config{Kind: TUN, Addr: p4, Peer: netip.MustParseAddr("2001:db8::2")}, "IP version"},
		{Config{Kind: TUN, Addr: p4, Peer: netip.MustParseAddr("192.0.2.1")}, "same as"},
		{Config{Kind: TUN, Addr: p4, Peer: netip.MustParseAddr("224.0.0.1")}, "not a unicast"},
		{Config{Kind: TUN, Addr: netip.MustParsePrefix("0.0.0.0/32"), Peer: peer4}, "not a unicast"},
		{Config{Kind: TUN, Addr: netip.MustParsePrefix("::ffff:192.0.2.1/128"), Peer: netip.MustParseAddr("::ffff:192.0.2.2")}, "IPv4 form"},
		{Config{Kind: TAP, Addr: netip.MustParsePrefix("203.0.113.50/24"), Peer: peer4}, "no point-to-point peer"},
		{Config{Kind: TUN, Bridge: "br0"}, "only a TAP"},
		{Config{Kind: TAP, Bridge: "br/0"}, `bridge name "br/0"`},
		{Config{Kind: TAP, Bridge: "bridgebridgebridge"}, "longer than 15"},
	} {
		err := tc.cfg.validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v, want valid", tc.cfg, err)
		case tc.want != "" && err == nil:
			t.Errorf("%+v: valid, want an error with %q", tc.cfg, tc.want)
		case tc.want != "" && !strings.Contains(err.Error(), tc.want):
			t.Errorf("%+v: %q, want it to contain %q", tc.cfg, err, tc.want)
		}
	}
}
