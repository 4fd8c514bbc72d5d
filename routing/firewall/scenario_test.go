//go:build linux

package firewall

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// lab0Masq is the typical rule: one client address, not back out of ppp0.
func lab0Masq() Masquerade {
	return Masquerade{Link: "lab0", Source: netip.MustParsePrefix("198.51.100.2/32"), NotOut: "ppp0"}
}

// runBackendScenario exercises a backend: idempotent Add, Rules, a second
// link, RemoveLink, Remove; check inspects the installed rules with the real
// tools after each step that leaves rules in place.
func runBackendScenario(t *testing.T, b Backend, check func(t *testing.T, want []Masquerade)) {
	t.Helper()
	m1 := lab0Masq()
	m2 := Masquerade{Link: "lab1", Source: netip.MustParsePrefix("198.51.100.0/25")}
	m3 := Masquerade{Link: "lab1", Source: netip.MustParsePrefix("203.0.113.0/24"), NotOut: "ppp1"}

	expect := func(link string, want ...Masquerade) {
		t.Helper()
		got, err := b.Rules(link)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 && len(want) == 0 {
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Rules(%q) = %+v, want %+v", link, got, want)
		}
	}

	expect("")
	if err := b.RemoveLink("lab0"); err != nil { // nothing there yet
		t.Fatal(err)
	}
	if err := b.Remove(m1); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := b.Add(m1); err != nil {
			t.Fatal(err)
		}
	}
	expect("", m1)
	expect("lab0", m1)
	expect("lab1")
	check(t, []Masquerade{m1})

	if err := b.Add(m2); err != nil {
		t.Fatal(err)
	}
	if err := b.Add(m3); err != nil {
		t.Fatal(err)
	}
	if err := b.Add(m2); err != nil {
		t.Fatal(err)
	}
	expect("", m1, m2, m3)
	expect("lab1", m2, m3)
	check(t, []Masquerade{m1, m2, m3})

	if err := b.RemoveLink("lab0"); err != nil {
		t.Fatal(err)
	}
	expect("", m2, m3)
	check(t, []Masquerade{m2, m3})

	if err := b.Remove(m3); err != nil {
		t.Fatal(err)
	}
	if err := b.Remove(m3); err != nil { // absent: not an error
		t.Fatal(err)
	}
	expect("", m2)
	check(t, []Masquerade{m2})

	if err := b.Remove(m2); err != nil {
		t.Fatal(err)
	}
	expect("")

	bad := Masquerade{Link: "lab0", Source: netip.MustParsePrefix("198.51.100.7/24")}
	if err := b.Add(bad); err == nil || !strings.Contains(err.Error(), "adding masquerade for 198.51.100.7/24") {
		t.Fatalf("Add(invalid) = %v", err)
	}
	if err := b.RemoveLink("bad link"); err == nil {
		t.Fatal("RemoveLink accepted an invalid link name")
	}
	if _, err := b.Rules("bad link"); err == nil {
		t.Fatal("Rules accepted an invalid link name")
	}
}
