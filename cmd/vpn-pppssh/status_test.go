package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/vpn-pppssh/vpn-pppssh/internal/rundir"
)

// TestStatusNamesModeAndCarrier: status says the mode, and the process
// carrying the link as pppd only in ppp mode.
func TestStatusNamesModeAndCarrier(t *testing.T) {
	for _, tc := range []struct {
		st        rundir.State
		want, not string
	}{
		{rundir.State{Name: "a", Phase: "up", Iface: "ppp0", Mode: "ppp", CarrierPid: 3777},
			"  mode       ppp\n  interface  ppp0\n  pppd pid   3777\n", "carrier "},
		{rundir.State{Name: "b", Phase: "up", Iface: "tun0", Mode: "tun"},
			"  mode       tun\n  interface  tun0\n  local", "pppd"},
	} {
		var out bytes.Buffer
		printStatus(&options{stdout: &out}, statusReport{Running: true, State: tc.st})
		if !strings.Contains(out.String(), tc.want) || strings.Contains(out.String(), tc.not) {
			t.Errorf("status of %s:\n%s\nwant %q in it and no %q", tc.st.Mode, out.String(), tc.want, tc.not)
		}
	}
}
