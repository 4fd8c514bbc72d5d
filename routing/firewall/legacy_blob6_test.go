//go:build linux && (amd64 || arm64 || riscv64 || loong64 || ppc64le || mips64le)

package firewall

import (
	"bytes"
	"net/netip"
	"testing"
)

// Synthetic ip6tables tables, laid out as ip6tables and the kernel lay
// them out (see legacy_blob_test.go for the IPv4 ones).

func std6Entry(verdict int32) []byte { return famIPv6.jumpEntry(verdict) }

func err6Entry(name string) []byte {
	tg := make([]byte, errorTargetSize)
	putXTHeader(tg, errorTargetSize, errorTarget)
	copy(tg[xtHeaderSize:], name)
	return famIPv6.build(ruleSpec{target: tg})
}

// emptyTable6 is ip6tables' table name of a fresh namespace, with an ACCEPT
// policy on each of hooks.
func emptyTable6(name string, hooks ...int) *iptTable {
	t := &iptTable{fam: famIPv6, name: name}
	for h := range numHooks {
		t.hookEntry[h], t.underflow[h] = 0xffffffff, 0xffffffff
	}
	for _, h := range hooks {
		t.validHooks |= 1 << h
		t.hookEntry[h] = uint32(len(t.entries))
		t.underflow[h] = uint32(len(t.entries))
		t.entries = append(t.entries, std6Entry(verdictAccept)...)
		t.numEntries++
	}
	t.entries = append(t.entries, err6Entry("ERROR")...)
	t.numEntries++
	return t
}

func emptyNat6() *iptTable {
	return emptyTable6(natTable, hookPreRouting, hookLocalIn, hookLocalOut, hookPostRouting)
}

func emptyRaw6() *iptTable { return emptyTable6(rawTable, hookPreRouting, hookLocalOut) }

// The sizes the kernel checks: struct ip6t_entry is 168 bytes, the
// standard target 40, so a policy entry is 208 (sizeof(struct
// ip6t_standard)) and the closing ERROR entry 232 (struct ip6t_error).
func TestEntry6Sizes(t *testing.T) {
	if n := len(std6Entry(verdictAccept)); n != 208 {
		t.Errorf("standard entry is %d bytes, want 208", n)
	}
	if n := len(err6Entry("ERROR")); n != 232 {
		t.Errorf("error entry is %d bytes, want 232", n)
	}
	if famIPv6.jumpEntrySize() != 208 || famIPv6.errorEntrySize() != 232 {
		t.Errorf("jump %d error %d", famIPv6.jumpEntrySize(), famIPv6.errorEntrySize())
	}
}

func TestMasqEntry6(t *testing.T) {
	m := Masquerade{Link: "lab0", Source: netip.MustParsePrefix("2001:db8:8000::/33"), NotOut: "ppp0"}
	e := masqEntry(m)
	// 168 + comment 288 + MASQUERADE 32+40.
	if len(e) != 528 || le.Uint16(e[ent6TargetOffset:]) != 456 || le.Uint16(e[ent6NextOffset:]) != 528 {
		t.Fatalf("size %d, target_offset %d, next_offset %d", len(e), le.Uint16(e[ent6TargetOffset:]), le.Uint16(e[ent6NextOffset:]))
	}
	src := m.Source.Addr().As16()
	if !bytes.Equal(e[ent6Src:ent6Src+16], src[:]) {
		t.Errorf("src %x", e[ent6Src:ent6Src+16])
	}
	wantMask := []byte{0xff, 0xff, 0xff, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	if !bytes.Equal(e[ent6Smsk:ent6Smsk+16], wantMask) {
		t.Errorf("smsk %x", e[ent6Smsk:ent6Smsk+16])
	}
	if !bytes.Equal(e[ent6Dst:ent6Dst+16], make([]byte, 16)) || !bytes.Equal(e[ent6Dmsk:ent6Dmsk+16], make([]byte, 16)) {
		t.Errorf("dst %x dmsk %x", e[ent6Dst:ent6Dst+16], e[ent6Dmsk:ent6Dmsk+16])
	}
	if got := xtString(e[ent6Outiface : ent6Outiface+ifnameSize]); got != "ppp0" {
		t.Errorf("outiface %q", got)
	}
	if !bytes.Equal(e[ent6OutifaceMask:ent6OutifaceMask+ifnameSize], append(bytes.Repeat([]byte{0xff}, 5), make([]byte, 11)...)) {
		t.Errorf("outiface_mask %x", e[ent6OutifaceMask:ent6OutifaceMask+ifnameSize])
	}
	if e[ent6Invflags] != iptInvViaOut || e[ent6Proto] != 0 || e[ent6Flags] != 0 || e[ent6Tos] != 0 {
		t.Errorf("invflags %#x proto %d flags %#x tos %d", e[ent6Invflags], e[ent6Proto], e[ent6Flags], e[ent6Tos])
	}
	if c, ok := famIPv6.entryComment(e); !ok || c != commentFor(m) {
		t.Errorf("comment %q %v", c, ok)
	}
	tg := famIPv6.target(e)
	if famIPv6.targetName(e) != masqTarget || len(tg) != masq6TargetSize || tg[xtRevision] != 0 ||
		!bytes.Equal(tg[xtHeaderSize:], make([]byte, 40)) {
		t.Errorf("target %q size %d payload %x", famIPv6.targetName(e), len(tg), tg[xtHeaderSize:])
	}

	plain := plainMasqEntry(m)
	if len(plain) != 240 || le.Uint16(plain[ent6TargetOffset:]) != 168 {
		t.Fatalf("plain entry size %d target_offset %d", len(plain), le.Uint16(plain[ent6TargetOffset:]))
	}
	if got, ok := famIPv6.chainMasq("lab0", plain); !ok || got != m {
		t.Errorf("chainMasq = %+v, %v; want %+v", got, ok, m)
	}
	any6 := Masquerade{Link: "lab0", Source: netip.MustParsePrefix("::/0")}
	if got, ok := famIPv6.chainMasq("lab0", plainMasqEntry(any6)); !ok || got != any6 {
		t.Errorf("chainMasq(::/0) = %+v, %v", got, ok)
	}
	k := bytes.Clone(e)
	le.PutUint32(k[ent6Comefrom:], 0x10)
	le.PutUint64(k[ent6Counters:], 42)
	le.PutUint32(k[ent6Nfcache:], 1)
	if !famIPv6.sameRule(e, k) {
		t.Error("sameRule is sensitive to bookkeeping")
	}
	if famIPv6.sameRule(e, masqEntry(Masquerade{Link: "lab0", Source: m.Source})) {
		t.Error("sameRule ignores NotOut")
	}
}

func TestSourceCheckEntry(t *testing.T) {
	s := SourceCheck{Link: "lab0", Iface: "ppp0"}
	e := sourceCheckEntry(s)
	// 168 + rpfilter 32+8 + comment 288 + standard target 40.
	if len(e) != 536 || le.Uint16(e[ent6TargetOffset:]) != 496 {
		t.Fatalf("size %d target_offset %d", len(e), le.Uint16(e[ent6TargetOffset:]))
	}
	if got := xtString(e[ent6Iniface : ent6Iniface+ifnameSize]); got != "ppp0" {
		t.Errorf("iniface %q", got)
	}
	if !bytes.Equal(e[ent6InifaceMask:ent6InifaceMask+ifnameSize], append(bytes.Repeat([]byte{0xff}, 5), make([]byte, 11)...)) {
		t.Errorf("iniface_mask %x", e[ent6InifaceMask:ent6InifaceMask+ifnameSize])
	}
	if e[ent6Invflags] != 0 || !bytes.Equal(e[ent6Src:ent6Iniface], make([]byte, ent6Iniface)) {
		t.Errorf("invflags %#x or addresses set", e[ent6Invflags])
	}
	ms := famIPv6.matches(e)
	if len(ms) != 2 || len(ms[0]) != 40 || xtString(ms[0][xtName:xtName+xtNameLen]) != rpfilterMatch ||
		ms[0][xtRevision] != 0 || ms[0][xtHeaderSize] != 0x08 {
		t.Fatalf("matches %x", ms)
	}
	if c, ok := famIPv6.entryComment(e); !ok || c != sourceCheckComment(s) {
		t.Errorf("comment %q %v", c, ok)
	}
	if v, ok := famIPv6.standardVerdict(e); !ok || v != verdictDrop {
		t.Errorf("verdict %d %v", v, ok)
	}
	plain := plainSourceCheckEntry(s)
	if len(plain) != 248 {
		t.Fatalf("plain entry is %d bytes, want 248", len(plain))
	}
	if got, ok := famIPv6.chainSourceCheck("lab0", plain); !ok || got != s {
		t.Errorf("chainSourceCheck = %+v, %v", got, ok)
	}
	if _, ok := famIPv6.chainSourceCheck("lab0", plainMasqEntry(Masquerade{Link: "lab0", Source: netip.MustParsePrefix("2001:db8::/32")})); ok {
		t.Error("chainSourceCheck took a masquerade")
	}
	if _, ok := famIPv6.chainMasq("lab0", plain); ok {
		t.Error("chainMasq took a source check")
	}
}

// Both layouts edit ip6tables tables: a rule appended to and removed from
// the hook's chain, and a chain per link with its jump.
func TestEdit6(t *testing.T) {
	m := Masquerade{Link: "lab0", Source: netip.MustParsePrefix("2001:db8::/32"), NotOut: "ppp0"}
	s := SourceCheck{Link: "lab0", Iface: "ppp0"}
	for _, tc := range []struct {
		name   string
		table  func() *iptTable
		hook   int
		rule   []byte
		plain  []byte
		policy uint32 // the hook's policy entry in the empty table
	}{
		{"nat", emptyNat6, hookPostRouting, masqEntry(m), plainMasqEntry(m), 3 * 208},
		{"raw", emptyRaw6, hookPreRouting, sourceCheckEntry(s), plainSourceCheckEntry(s), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orig := tc.table()
			if orig.underflow[tc.hook] != tc.policy {
				t.Fatalf("policy at %d, want %d", orig.underflow[tc.hook], tc.policy)
			}
			tb := orig.clone()
			if !applyEdit(t, tb, appendRule(tc.hook, tc.rule)) {
				t.Fatal("append changed nothing")
			}
			if applyEdit(t, tb, appendRule(tc.hook, tc.rule)) {
				t.Fatal("second append changed the table")
			}
			chain, _ := tb.chainEntries(tc.hook)
			if len(chain) != 1 || !bytes.Equal(tb.entry(chain[0]), tc.rule) {
				t.Fatalf("hook chain %v", chain)
			}
			applyEdit(t, tb, removeMatching(tc.hook, func(e []byte) bool { return famIPv6.sameRule(e, tc.rule) }))
			if !bytes.Equal(tb.entries, orig.entries) || tb.underflow != orig.underflow {
				t.Fatal("remove did not restore the table")
			}

			applyEdit(t, tb, addToChain(tc.hook, chainName("lab0"), tc.plain))
			c, ok, err := tb.findChain(chainName("lab0"))
			if err != nil || !ok || len(c.rules) != 1 || !bytes.Equal(tb.entry(c.rules[0]), tc.plain) {
				t.Fatalf("chain %+v %v %v", c, ok, err)
			}
			if j, _ := tb.jumpsTo(tc.hook, c.first()); len(j) != 1 {
				t.Fatalf("%d jumps to the chain", len(j))
			}
			applyEdit(t, tb, removeChainRules(tc.hook, chainName("lab0"), nil))
			if !bytes.Equal(tb.entries, orig.entries) || tb.numEntries != orig.numEntries ||
				tb.hookEntry != orig.hookEntry || tb.underflow != orig.underflow {
				t.Fatal("removing the chain did not restore the table")
			}
		})
	}
}
