//go:build linux && (amd64 || arm64 || riscv64 || loong64 || ppc64le || mips64le)

package firewall

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
)

func TestChainName(t *testing.T) {
	long := strings.Repeat("a", 32)
	for link, want := range map[string]string{
		"lab0":                "vpn-pppssh-lab0",
		"abcdefghijklmnopq":   "vpn-pppssh-abcdefghijklmnopq", // 28 characters
		"abcdefghijklmnopqr":  "vpn-pppssh-abcdefgh~",         // hashed
		long:                  "vpn-pppssh-aaaaaaaa~",
		"abcdefghijklmnopqr2": "vpn-pppssh-abcdefgh~",
	} {
		got := chainName(link)
		if len(got) > maxChainLen || !strings.HasPrefix(got, want) {
			t.Errorf("chainName(%q) = %q (%d), want %q...", link, got, len(got), want)
		}
		owner, ok := linkOfChain(got)
		if !ok || (!strings.Contains(got, "~") && owner != link) {
			t.Errorf("linkOfChain(%q) = %q, %v", got, owner, ok)
		}
	}
	if chainName("abcdefghijklmnopqr") == chainName("abcdefghijklmnopqr2") {
		t.Error("two long links share a chain")
	}
	for _, other := range []string{"MYCHAIN", "vpn-pppssh-", "vpn-pppssh-a b", "POSTROUTING"} {
		if _, ok := linkOfChain(other); ok {
			t.Errorf("linkOfChain(%q) claims a chain that is not ours", other)
		}
	}
}

// checkVerdicts fails unless every jump of the table lands on an entry.
func checkVerdicts(t *testing.T, tb *iptTable) {
	t.Helper()
	offs, err := tb.offsets()
	if err != nil {
		t.Fatal(err)
	}
	starts := map[uint32]bool{}
	for _, o := range offs {
		starts[o] = true
	}
	for _, o := range offs {
		if v, ok := famIPv4.standardVerdict(tb.entry(o)); ok && v >= 0 && !starts[uint32(v)] {
			t.Fatalf("entry at %d jumps to %d, which starts no entry", o, v)
		}
	}
}

// applyEdit runs e on tb, checks the origin it reports against the blob,
// and returns whether it changed anything.
func applyEdit(t *testing.T, tb *iptTable, e edit) bool {
	t.Helper()
	before := tb.clone()
	origin, err := e(tb)
	if err != nil {
		t.Fatal(err)
	}
	if origin == nil {
		if !bytes.Equal(before.entries, tb.entries) {
			t.Fatal("edit reported no change but changed the table")
		}
		return false
	}
	offs, err := tb.offsets()
	if err != nil {
		t.Fatal(err)
	}
	oldOffs, _ := before.offsets()
	if len(origin) != len(offs) {
		t.Fatalf("origin has %d entries, table %d", len(origin), len(offs))
	}
	for i, o := range origin {
		if o >= 0 && !famIPv4.sameRule(tb.entry(offs[i]), before.entry(oldOffs[o])) {
			// Jumps move with the table; compare everything else.
			if _, ok := famIPv4.standardVerdict(tb.entry(offs[i])); !ok {
				t.Fatalf("entry %d claims to be old entry %d but differs", i, o)
			}
		}
	}
	checkVerdicts(t, tb)
	return true
}

func TestChainLayoutBlob(t *testing.T) {
	for name, fresh := range map[string]func() *iptTable{"empty": emptyNat, "user chain": userChainNat} {
		t.Run(name, func(t *testing.T) {
			tb, orig := fresh(), fresh()
			m1 := lab0Masq()
			m2 := Masquerade{Link: "lab0", Source: netip.MustParsePrefix("203.0.113.0/24")}
			if !applyEdit(t, tb, addChainRule(m1)) {
				t.Fatal("first add changed nothing")
			}
			if applyEdit(t, tb, addChainRule(m1)) {
				t.Fatal("second add of the same rule changed the table")
			}
			applyEdit(t, tb, addChainRule(m2))

			c, ok, err := tb.findChain("vpn-pppssh-lab0")
			if err != nil || !ok {
				t.Fatalf("chain missing: %v", err)
			}
			var got []Masquerade
			for _, off := range c.rules {
				m, ok := famIPv4.chainMasq("lab0", tb.entry(off))
				if !ok {
					t.Fatalf("rule at %d is not ours", off)
				}
				got = append(got, m)
			}
			if len(got) != 2 || got[0] != m1 || got[1] != m2 {
				t.Fatalf("chain rules %+v, want %+v %+v", got, m1, m2)
			}
			if v, ok := famIPv4.standardVerdict(tb.entry(c.footer)); !ok || v != verdictReturn {
				t.Fatalf("chain does not end with RETURN")
			}
			jumps, err := tb.jumpsTo(hookPostRouting, c.first())
			if err != nil || len(jumps) != 1 {
				t.Fatalf("jumps to the chain: %v %v", jumps, err)
			}
			post, _ := tb.chainEntries(hookPostRouting)
			if jumps[0] != post[len(post)-1] {
				t.Errorf("the jump is not POSTROUTING's last rule")
			}
			// No comment anywhere: the kernel has no comment match.
			offs, _ := tb.offsets()
			for _, o := range offs {
				if _, ok := famIPv4.entryComment(tb.entry(o)); ok {
					t.Fatalf("entry at %d carries a comment", o)
				}
			}
			// The admin's chain is still reached by its jumps.
			if mc, ok, _ := tb.findChain("MYCHAIN"); ok {
				for _, h := range []int{hookPreRouting, hookPostRouting} {
					if j, _ := tb.jumpsTo(h, mc.first()); len(j) != 1 {
						t.Errorf("hook %d: %d jumps to MYCHAIN", h, len(j))
					}
				}
			}

			applyEdit(t, tb, removeChainRules(hookPostRouting, chainName("lab0"), func(e []byte) bool { return famIPv4.sameRule(e, plainMasqEntry(m1)) }))
			if c, ok, _ := tb.findChain("vpn-pppssh-lab0"); !ok || len(c.rules) != 1 {
				t.Fatalf("after removing one rule: chain %+v %v", c, ok)
			}
			applyEdit(t, tb, removeChainRules(hookPostRouting, chainName("lab0"), nil))
			if !bytes.Equal(tb.entries, orig.entries) || tb.numEntries != orig.numEntries ||
				tb.hookEntry != orig.hookEntry || tb.underflow != orig.underflow {
				t.Fatal("removing the chain did not restore the table")
			}
			if applyEdit(t, tb, removeChainRules(hookPostRouting, chainName("lab0"), nil)) {
				t.Fatal("removing an absent chain changed the table")
			}
		})
	}
}

// A chain of ours that an admin's rule jumps to is not deleted from under
// that rule.
func TestChainNotDeletedUnderAForeignJump(t *testing.T) {
	tb := emptyNat()
	applyEdit(t, tb, addChainRule(lab0Masq()))
	c, _, _ := tb.findChain(chainName("lab0"))
	// PREROUTING's first rule jumps to it too.
	pre := tb.hookEntry[hookPreRouting]
	if _, err := tb.insert(pre, famIPv4.jumpEntry(int32(c.first())+int32(famIPv4.jumpEntrySize()))); err != nil {
		t.Fatal(err)
	}
	if _, err := removeChainRules(hookPostRouting, chainName("lab0"), nil)(tb); err == nil || !strings.Contains(err.Error(), "still the target") {
		t.Fatalf("err = %v", err)
	}
}
