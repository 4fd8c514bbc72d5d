package main

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/vpn-pppssh/vpn-pppssh/pppssh"
)

// TestHookEnvFromTheCarrier: the hooks get the tty and speed the carrier
// reported, and its mode; a bridge port without an address gets an empty
// address, as a hook can test.
func TestHookEnvFromTheCarrier(t *testing.T) {
	cfg := pppssh.Defaults()
	cfg.Name, cfg.IPParam = "office", "work"
	a, b := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2")
	for _, tc := range []struct {
		ci   pppssh.CarrierInfo
		want string
	}{
		{pppssh.CarrierInfo{Mode: "ppp", Iface: "ppp0", TTY: "/dev/pts/3", Speed: "38400", Local: a, Remote: b},
			"ppp0 /dev/pts/3 38400 198.51.100.1 198.51.100.2 work|VPN_NAME=office VPN_MODE=ppp VPN_LOCAL6= VPN_REMOTE6="},
		{pppssh.CarrierInfo{Mode: "ppp", Iface: "ppp0", TTY: "/dev/pts/3", Speed: "38400", Local: a, Remote: b,
			Local6: netip.MustParseAddr("2001:db8:6::2"), Remote6: netip.MustParseAddr("2001:db8:6::1")},
			"ppp0 /dev/pts/3 38400 198.51.100.1 198.51.100.2 work|VPN_NAME=office VPN_MODE=ppp VPN_LOCAL6=2001:db8:6::2 VPN_REMOTE6=2001:db8:6::1"},
		{pppssh.CarrierInfo{Mode: "tun", Iface: "tun0", TTY: pppssh.DeviceTTY, Speed: pppssh.NoSpeed, Local: a, Remote: b},
			"tun0 /dev/net/tun 0 198.51.100.1 198.51.100.2 work|VPN_NAME=office VPN_MODE=tun VPN_LOCAL6= VPN_REMOTE6="},
		{pppssh.CarrierInfo{Mode: "ethernet", Iface: "tap0", TTY: pppssh.DeviceTTY, Speed: pppssh.NoSpeed, Remote: b},
			"tap0 /dev/net/tun 0  198.51.100.2 work|VPN_NAME=office VPN_MODE=ethernet VPN_LOCAL6= VPN_REMOTE6="},
	} {
		e := hookEnv(cfg, pppssh.Info{Name: "office", CarrierInfo: tc.ci})
		env := e.Environ()
		got := strings.Join(e.Args(), " ") + "|" + strings.Join(env[len(env)-4:], " ")
		if got != tc.want {
			t.Errorf("%s: hooks get %q, want %q", tc.ci.Mode, got, tc.want)
		}
	}
}
