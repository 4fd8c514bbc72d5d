package routing

import (
	"strings"
	"testing"
)

// A link with SourceCheck makes its interface's reverse-path filter strict
// for its life and gives the old value back; an interface that is already
// gone (the usual case once pppd has ended) is nothing to restore.
func TestSourceCheck(t *testing.T) {
	h := &fakeHost{forward: "0", rp: map[string]string{"ppp0": "2"}, index: map[string]int{"ppp0": 3}}
	r := mustRouter(t, "vpn", t.TempDir(), h)
	mustSet(t, r, Config{Iface: "ppp0", SourceCheck: true})
	if h.rp["ppp0"] != "1" {
		t.Fatalf("rp_filter on ppp0 = %q, want 1", h.rp["ppp0"])
	}
	if got := changeStrings(r); !strings.Contains(got, "source check on ppp0 (rp_filter 1, was 2)") {
		t.Errorf("applied: %s", got)
	}
	mustClose(t, r)
	if h.rp["ppp0"] != "2" {
		t.Errorf("rp_filter on ppp0 = %q after Close, want 2 again", h.rp["ppp0"])
	}

	mustSet(t, r, Config{Iface: "ppp0", SourceCheck: true})
	delete(h.rp, "ppp0") // the interface went with its pppd
	mustClose(t, r)
	if n := len(r.Applied()); n != 0 {
		t.Errorf("%d changes left after closing a link whose interface is gone", n)
	}

	// Another link's ppp0 came up meanwhile and checks its sources: the
	// old link's undo must leave it alone.
	h.rp["ppp0"], h.index["ppp0"] = "2", 7
	mustSet(t, r, Config{Iface: "ppp0", SourceCheck: true})
	h.index["ppp0"] = 8 // gone, and a new ppp0 of another link set it to 1
	mustClose(t, r)
	if h.rp["ppp0"] != "1" {
		t.Errorf("rp_filter of another link's ppp0 = %q after the old link closed, want 1 kept", h.rp["ppp0"])
	}
}

func changeStrings(r *Router) string {
	var s []string
	for _, c := range r.Applied() {
		s = append(s, c.String())
	}
	return strings.Join(s, "; ")
}
