//go:build linux && (amd64 || arm64 || riscv64 || loong64 || ppc64le || mips64le)

package firewall

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
)

// Builders for synthetic tables laid out the way iptables (libiptc) and the
// kernel lay them out: built-in chains in hook order, each ending with its
// policy, then user chains (ERROR head entry, rules, RETURN), then the
// closing ERROR entry.

func stdEntry(src string, verdict int32) []byte {
	e := make([]byte, entrySize+standardTargetSize)
	if src != "" {
		p := netip.MustParsePrefix(src)
		a := p.Addr().As4()
		copy(e[entSrc:], a[:])
		for i := 0; i < p.Bits(); i++ {
			e[entSmsk+i/8] |= 0x80 >> (i % 8)
		}
	}
	le.PutUint16(e[entTargetOffset:], entrySize)
	le.PutUint16(e[entNextOffset:], uint16(len(e)))
	putXTHeader(e[entrySize:], standardTargetSize, standardTarget)
	le.PutUint32(e[entrySize+xtHeaderSize:], uint32(verdict))
	return e
}

func errEntry(name string) []byte {
	e := make([]byte, entrySize+errorTargetSize)
	le.PutUint16(e[entTargetOffset:], entrySize)
	le.PutUint16(e[entNextOffset:], uint16(len(e)))
	putXTHeader(e[entrySize:], errorTargetSize, errorTarget)
	copy(e[entrySize+xtHeaderSize:], name)
	return e
}

// tableBuilder appends entries and remembers chain offsets.
type tableBuilder struct {
	t iptTable
}

func newBuilder() *tableBuilder {
	b := &tableBuilder{t: iptTable{fam: famIPv4, name: natTable, validHooks: 1<<hookPreRouting | 1<<hookLocalIn | 1<<hookLocalOut | 1<<hookPostRouting}}
	for h := range numHooks {
		b.t.hookEntry[h] = 0xffffffff
		b.t.underflow[h] = 0xffffffff
	}
	return b
}

func (b *tableBuilder) off() uint32 { return uint32(len(b.t.entries)) }

func (b *tableBuilder) add(e []byte) uint32 {
	off := b.off()
	b.t.entries = append(b.t.entries, e...)
	b.t.numEntries++
	return off
}

// builtin adds hook h's chain: its rules, then an ACCEPT policy.
func (b *tableBuilder) builtin(h int, rules ...[]byte) {
	b.t.hookEntry[h] = b.off()
	for _, r := range rules {
		b.add(r)
	}
	b.t.underflow[h] = b.add(stdEntry("", verdictAccept))
}

const (
	// Offsets in the "user chain" table below.
	ucPreJump     = 0    // PREROUTING: -s 192.0.2.0/24 -j MYCHAIN
	ucPostJump    = 608  // POSTROUTING: -s 203.0.113.0/24 -j MYCHAIN
	ucPostFall    = 760  // POSTROUTING: -s 198.51.100.9/32 (no target: falls through)
	ucPostPolicy  = 912  // POSTROUTING policy
	ucChainHead   = 1064 // MYCHAIN's ERROR head
	ucChainStart  = 1240 // MYCHAIN's first rule
	ucChainReturn = 1392 // MYCHAIN's RETURN
	ucTableEnd    = 1544 // closing ERROR entry
)

// emptyNat is the nat table of a fresh network namespace.
func emptyNat() *iptTable {
	b := newBuilder()
	b.builtin(hookPreRouting)
	b.builtin(hookLocalIn)
	b.builtin(hookLocalOut)
	b.builtin(hookPostRouting)
	b.add(errEntry("ERROR"))
	return &b.t
}

// userChainNat has a user chain MYCHAIN that PREROUTING and POSTROUTING
// jump to, and a fall-through rule right before POSTROUTING's policy.
func userChainNat() *iptTable {
	b := newBuilder()
	b.builtin(hookPreRouting, stdEntry("192.0.2.0/24", ucChainStart))
	b.builtin(hookLocalIn)
	b.builtin(hookLocalOut)
	b.builtin(hookPostRouting,
		stdEntry("203.0.113.0/24", ucChainStart),
		stdEntry("198.51.100.9/32", ucPostFall+entrySize+standardTargetSize))
	b.add(errEntry("MYCHAIN"))
	b.add(stdEntry("198.51.100.0/24", verdictAccept))
	b.add(stdEntry("", verdictReturn))
	b.add(errEntry("ERROR"))
	return &b.t
}

func verdictAt(t *testing.T, tb *iptTable, off uint32) int32 {
	t.Helper()
	v, ok := famIPv4.standardVerdict(tb.entry(off))
	if !ok {
		t.Fatalf("entry at %d is not a standard target", off)
	}
	return v
}

func TestSyntheticLayout(t *testing.T) {
	tb := userChainNat()
	offs, err := tb.offsets()
	if err != nil {
		t.Fatal(err)
	}
	want := []uint32{0, 152, 304, 456, ucPostJump, ucPostFall, ucPostPolicy, ucChainHead, ucChainStart, ucChainReturn, ucTableEnd}
	if len(offs) != len(want) {
		t.Fatalf("offsets = %v, want %v", offs, want)
	}
	for i := range want {
		if offs[i] != want[i] {
			t.Fatalf("offsets = %v, want %v", offs, want)
		}
	}
	if got := famIPv4.targetName(tb.entry(ucChainHead)); got != errorTarget {
		t.Fatalf("chain head target = %q", got)
	}
}

func TestInsertRemove(t *testing.T) {
	masq := masqEntry(Masquerade{Link: "lab0", Source: netip.MustParsePrefix("198.51.100.2/32"), NotOut: "ppp0"})
	n := uint32(len(masq))
	tests := []struct {
		name          string
		table         func() *iptTable
		wantHook      [numHooks]uint32 // after insertion
		wantUnderflow [numHooks]uint32
		wantVerdicts  map[uint32]int32 // entry offset after insertion -> verdict
	}{
		{
			name:          "empty nat",
			table:         emptyNat,
			wantHook:      [numHooks]uint32{0, 152, 0xffffffff, 304, 456},
			wantUnderflow: [numHooks]uint32{0, 152, 0xffffffff, 304, 456 + n},
			wantVerdicts: map[uint32]int32{
				0: verdictAccept, 152: verdictAccept, 304: verdictAccept, 456 + n: verdictAccept,
			},
		},
		{
			name:          "user chain and fall-through",
			table:         userChainNat,
			wantHook:      [numHooks]uint32{0, 304, 0xffffffff, 456, ucPostJump},
			wantUnderflow: [numHooks]uint32{152, 304, 0xffffffff, 456, ucPostPolicy + n},
			wantVerdicts: map[uint32]int32{
				ucPreJump:         ucChainStart + int32(n), // jump into the user chain moved
				ucPostJump:        ucChainStart + int32(n),
				ucPostFall:        ucPostPolicy, // falls through to the new rule
				ucPostPolicy + n:  verdictAccept,
				ucChainStart + n:  verdictAccept,
				ucChainReturn + n: verdictReturn,
				152:               verdictAccept, // PREROUTING policy
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			orig := tc.table()
			tb := orig.clone()
			pos := tb.underflow[hookPostRouting]
			idx, err := tb.insert(pos, masq)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tb.offsets(); err != nil {
				t.Fatalf("table after insert: %v", err)
			}
			if tb.numEntries != orig.numEntries+1 || len(tb.entries) != len(orig.entries)+int(n) {
				t.Fatalf("after insert: %d entries, %d bytes", tb.numEntries, len(tb.entries))
			}
			if !bytes.Equal(tb.entry(pos), masq) {
				t.Fatalf("new rule not at %d", pos)
			}
			origOffs, _ := orig.offsets()
			if wantIdx, _ := entryIndex(origOffs, pos); idx != wantIdx {
				t.Fatalf("insert index = %d, want %d", idx, wantIdx)
			}
			if tb.hookEntry != tc.wantHook {
				t.Errorf("hook_entry = %v, want %v", tb.hookEntry, tc.wantHook)
			}
			if tb.underflow != tc.wantUnderflow {
				t.Errorf("underflow = %v, want %v", tb.underflow, tc.wantUnderflow)
			}
			for off, want := range tc.wantVerdicts {
				if got := verdictAt(t, tb, off); got != want {
					t.Errorf("verdict at %d = %d, want %d", off, got, want)
				}
			}
			chain, err := tb.chainEntries(hookPostRouting)
			if err != nil {
				t.Fatal(err)
			}
			if len(chain) == 0 || chain[len(chain)-1] != pos {
				t.Fatalf("POSTROUTING rules %v do not end with the new rule at %d", chain, pos)
			}

			ridx, err := tb.remove(pos)
			if err != nil {
				t.Fatal(err)
			}
			if ridx != idx {
				t.Errorf("remove index = %d, want %d", ridx, idx)
			}
			if !bytes.Equal(tb.entries, orig.entries) {
				t.Errorf("blob after remove differs from the original")
			}
			if tb.hookEntry != orig.hookEntry || tb.underflow != orig.underflow || tb.numEntries != orig.numEntries {
				t.Errorf("header after remove: hooks %v/%v entries %d, want %v/%v %d",
					tb.hookEntry, tb.underflow, tb.numEntries, orig.hookEntry, orig.underflow, orig.numEntries)
			}
		})
	}
}

func TestInsertTwiceRemoveFirst(t *testing.T) {
	orig := userChainNat()
	tb := orig.clone()
	a := masqEntry(Masquerade{Link: "a", Source: netip.MustParsePrefix("198.51.100.2/32"), NotOut: "ppp0"})
	b := masqEntry(Masquerade{Link: "b", Source: netip.MustParsePrefix("198.51.100.0/25")})
	if _, err := tb.insert(tb.underflow[hookPostRouting], a); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.insert(tb.underflow[hookPostRouting], b); err != nil {
		t.Fatal(err)
	}
	if got := verdictAt(t, tb, ucPreJump); got != ucChainStart+int32(len(a)+len(b)) {
		t.Fatalf("jump = %d", got)
	}
	// Remove the first one: b moves down into its place, the fall-through
	// now reaches b.
	if _, err := tb.remove(ucPostPolicy); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(tb.entry(ucPostPolicy), b) {
		t.Fatal("b did not move down")
	}
	if got := verdictAt(t, tb, ucPostFall); got != ucPostPolicy {
		t.Fatalf("fall-through = %d", got)
	}
	if _, err := tb.remove(ucPostPolicy); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(tb.entries, orig.entries) || tb.underflow != orig.underflow {
		t.Fatal("table not restored")
	}
}

func TestRemoveRefuses(t *testing.T) {
	tests := []struct {
		name string
		pos  uint32
		want string
	}{
		{"policy", ucPostPolicy, "policy"},
		{"chain head", ucChainHead, "chain head"},
		{"table end", ucTableEnd, "chain head"},
		{"not an entry", 8, "no entry"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tb := userChainNat()
			if _, err := tb.remove(tc.pos); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("remove(%d) = %v, want error with %q", tc.pos, err, tc.want)
			}
		})
	}
}

func TestOffsetsRejectsMalformed(t *testing.T) {
	tests := []struct {
		name    string
		corrupt func(tb *iptTable)
	}{
		{"truncated", func(tb *iptTable) { tb.entries = tb.entries[:len(tb.entries)-8] }},
		{"count", func(tb *iptTable) { tb.numEntries++ }},
		{"next_offset zero", func(tb *iptTable) { le.PutUint16(tb.entries[entNextOffset:], 0) }},
		{"next_offset unaligned", func(tb *iptTable) { le.PutUint16(tb.entries[entNextOffset:], 153) }},
		{"target offset small", func(tb *iptTable) { le.PutUint16(tb.entries[entTargetOffset:], 8) }},
		{"target size large", func(tb *iptTable) { le.PutUint16(tb.entries[entrySize:], 48) }},
		{"target size small", func(tb *iptTable) { le.PutUint16(tb.entries[entrySize:], 8) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tb := userChainNat()
			tc.corrupt(tb)
			if _, err := tb.offsets(); err == nil {
				t.Fatal("offsets() accepted a malformed blob")
			}
			if _, err := tb.insert(ucPostPolicy, stdEntry("", verdictAccept)); err == nil {
				t.Fatal("insert() accepted a malformed blob")
			}
		})
	}
}

func TestMasqEntry(t *testing.T) {
	tests := []struct {
		m        Masquerade
		smsk     [4]byte
		outiface string
		outMask  int // bytes of 0xff
		inv      byte
	}{
		{Masquerade{Link: "lab0", Source: netip.MustParsePrefix("198.51.100.2/32"), NotOut: "ppp0"}, [4]byte{255, 255, 255, 255}, "ppp0", 5, iptInvViaOut},
		{Masquerade{Link: "lab0", Source: netip.MustParsePrefix("198.51.100.0/24")}, [4]byte{255, 255, 255, 0}, "", 0, 0},
		{Masquerade{Link: "lab0", Source: netip.MustParsePrefix("198.51.100.0/25"), NotOut: "abcdefghijklmno"}, [4]byte{255, 255, 255, 128}, "abcdefghijklmno", 16, iptInvViaOut},
		{Masquerade{Link: "lab0", Source: netip.MustParsePrefix("0.0.0.0/0")}, [4]byte{}, "", 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.m.Source.String(), func(t *testing.T) {
			e := masqEntry(tc.m)
			if len(e) != 456 || le.Uint16(e[entTargetOffset:]) != 400 || le.Uint16(e[entNextOffset:]) != 456 {
				t.Fatalf("size %d, target_offset %d, next_offset %d", len(e), le.Uint16(e[entTargetOffset:]), le.Uint16(e[entNextOffset:]))
			}
			src := tc.m.Source.Addr().As4()
			if !bytes.Equal(e[entSrc:entSrc+4], src[:]) || !bytes.Equal(e[entSmsk:entSmsk+4], tc.smsk[:]) {
				t.Errorf("src %v mask %v", e[entSrc:entSrc+4], e[entSmsk:entSmsk+4])
			}
			if got := xtString(e[entOutiface : entOutiface+ifnameSize]); got != tc.outiface {
				t.Errorf("outiface %q", got)
			}
			wantMask := make([]byte, ifnameSize)
			for i := range tc.outMask {
				wantMask[i] = 0xff
			}
			if !bytes.Equal(e[entOutifaceMask:entOutifaceMask+ifnameSize], wantMask) {
				t.Errorf("outiface_mask %x", e[entOutifaceMask:entOutifaceMask+ifnameSize])
			}
			if e[entInvflags] != tc.inv {
				t.Errorf("invflags %#x", e[entInvflags])
			}
			c, ok := famIPv4.entryComment(e)
			if !ok || c != commentFor(tc.m) {
				t.Errorf("comment %q %v", c, ok)
			}
			if famIPv4.targetName(e) != masqTarget || le.Uint16(famIPv4.target(e)) != masqTargetSize || le.Uint32(famIPv4.target(e)[xtHeaderSize:]) != 1 {
				t.Errorf("target %q size %d rangesize %d", famIPv4.targetName(e), le.Uint16(famIPv4.target(e)), le.Uint32(famIPv4.target(e)[xtHeaderSize:]))
			}
			// Bookkeeping fields do not make a rule different.
			k := bytes.Clone(e)
			le.PutUint32(k[entComefrom:], 0x10)
			le.PutUint64(k[entCounters:], 42)
			if !famIPv4.sameRule(e, k) {
				t.Error("sameRule is sensitive to counters/comefrom")
			}
			other := masqEntry(Masquerade{Link: "lab1", Source: tc.m.Source, NotOut: tc.m.NotOut})
			if famIPv4.sameRule(e, other) {
				t.Error("sameRule ignores the owning link")
			}
		})
	}
}
