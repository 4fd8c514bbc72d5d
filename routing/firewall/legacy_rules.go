//go:build linux && (amd64 || arm64 || riscv64 || loong64 || ppc64le || mips64le)

package firewall

import (
	"math/bits"
	"net/netip"
)

// The entries of our rules, built and read back:
//
//	masquerade:   -s <Source> [! -o <NotOut>] [-m comment ...] -j MASQUERADE
//	source check: -i <Iface> -m rpfilter --invert [-m comment ...] -j DROP
//
// The comment match is left out in the chain-per-link layout
// (legacy_chain.go).

// ruleSpec is what an entry of ours matches and does.
type ruleSpec struct {
	src     netip.Prefix // invalid: any source
	in, out string       // interface names; "" = any
	notOut  bool         // out is negated
	matches [][]byte     // whole matches, header included
	target  []byte       // whole target, header included
}

// putIface writes an interface name and the mask iptables writes for it:
// the name and its NUL, an exact match.
func putIface(name, mask []byte, iface string) {
	copy(name[:ifnameSize-1], iface)
	for i := 0; i <= len(iface); i++ {
		mask[i] = 0xff
	}
}

// build lays r out as an entry of family f.
func (f *xtFamily) build(r ruleSpec) []byte {
	tOff := f.entrySize
	for _, m := range r.matches {
		tOff += len(m)
	}
	size := tOff + len(r.target)
	e := make([]byte, size)
	if r.src.IsValid() {
		addr := r.src.Addr().AsSlice()
		copy(e[f.src:f.src+f.addrLen], addr)
		b := r.src.Bits()
		for i := range f.addrLen {
			switch {
			case b >= 8*(i+1):
				e[f.smsk+i] = 0xff
			case b > 8*i:
				e[f.smsk+i] = byte(0xff << (8*(i+1) - b))
			}
		}
	}
	if r.in != "" {
		putIface(e[f.iniface:f.iniface+ifnameSize], e[f.inifaceMask:f.inifaceMask+ifnameSize], r.in)
	}
	if r.out != "" {
		putIface(e[f.outiface:f.outiface+ifnameSize], e[f.outifaceMask:f.outifaceMask+ifnameSize], r.out)
		if r.notOut {
			e[f.invflags] |= iptInvViaOut
		}
	}
	le.PutUint16(e[f.targetOffset:], uint16(tOff))
	le.PutUint16(e[f.nextOffset:], uint16(size))
	at := f.entrySize
	for _, m := range r.matches {
		at += copy(e[at:], m)
	}
	copy(e[tOff:], r.target)
	return e
}

// commentMatchOf is the comment match carrying text.
func commentMatchOf(text string) []byte {
	m := make([]byte, commentMatchSize)
	putXTHeader(m, commentMatchSize, commentMatch)
	copy(m[xtHeaderSize:xtHeaderSize+commentLen-1], text)
	return m
}

// rpfilterInverted is `-m rpfilter --invert`: it matches packets whose
// source fails the strict reverse-path check.
func rpfilterInverted() []byte {
	m := make([]byte, rpfilterMatchSize)
	putXTHeader(m, rpfilterMatchSize, rpfilterMatch)
	m[xtHeaderSize] = rpfilterInvert
	return m
}

// masqTargetOf is MASQUERADE with no port range: for IPv4 the compat
// range struct with rangesize 1 and the single range all zero, for IPv6
// an all-zero struct nf_nat_range.
func (f *xtFamily) masqTargetOf() []byte {
	tg := make([]byte, f.masqTargetSize)
	putXTHeader(tg, f.masqTargetSize, masqTarget)
	if f == famIPv4 {
		le.PutUint32(tg[xtHeaderSize:], 1) // rangesize
	}
	return tg
}

// standardTargetOf is the standard target with verdict v.
func standardTargetOf(v int32) []byte {
	tg := make([]byte, standardTargetSize)
	putXTHeader(tg, standardTargetSize, standardTarget)
	le.PutUint32(tg[xtHeaderSize:], uint32(v))
	return tg
}

// masqFam is the family of m's rule.
func masqFam(m Masquerade) *xtFamily {
	if m.Source.Addr().Is4() {
		return famIPv4
	}
	return famIPv6
}

// masqEntry builds the entry for m, in its family:
//
//	-s <Source> [! -o <NotOut>] -m comment --comment "vpn-pppssh:..." -j MASQUERADE
func masqEntry(m Masquerade) []byte { return buildMasqEntry(m, true) }

// plainMasqEntry is masqEntry without the comment match, for the per-link
// chain layout (legacy_chain.go): -s <Source> [! -o <NotOut>] -j MASQUERADE.
func plainMasqEntry(m Masquerade) []byte { return buildMasqEntry(m, false) }

func buildMasqEntry(m Masquerade, comment bool) []byte {
	f := masqFam(m)
	r := ruleSpec{src: m.Source, out: m.NotOut, notOut: true, target: f.masqTargetOf()}
	if comment {
		r.matches = [][]byte{commentMatchOf(commentFor(m))}
	}
	return f.build(r)
}

// sourceCheckEntry builds the ip6tables raw table entry for s:
//
//	-i <Iface> -m rpfilter --invert -m comment --comment "vpn-pppssh:..." -j DROP
func sourceCheckEntry(s SourceCheck) []byte { return buildSourceCheckEntry(s, true) }

// plainSourceCheckEntry is sourceCheckEntry without the comment match, for
// the per-link chain layout.
func plainSourceCheckEntry(s SourceCheck) []byte { return buildSourceCheckEntry(s, false) }

func buildSourceCheckEntry(s SourceCheck, comment bool) []byte {
	r := ruleSpec{in: s.Iface, matches: [][]byte{rpfilterInverted()}, target: standardTargetOf(verdictDrop)}
	if comment {
		r.matches = append(r.matches, commentMatchOf(sourceCheckComment(s)))
	}
	return famIPv6.build(r)
}

// chainMasq reads back the Masquerade a plain rule of link's chain stands
// for; ok is false for anything else.
func (f *xtFamily) chainMasq(link string, e []byte) (Masquerade, bool) {
	if f.targetName(e) != masqTarget || len(f.matches(e)) != 0 {
		return Masquerade{}, false
	}
	addr, ok := netip.AddrFromSlice(e[f.src : f.src+f.addrLen])
	if !ok {
		return Masquerade{}, false
	}
	ones := 0
	for _, b := range e[f.smsk : f.smsk+f.addrLen] {
		ones += bits.OnesCount8(b)
	}
	m := Masquerade{Link: link, Source: netip.PrefixFrom(addr, ones)}
	if e[f.invflags]&iptInvViaOut != 0 {
		m.NotOut = xtString(e[f.outiface : f.outiface+ifnameSize])
	}
	// A chain whose name was hashed (a long link name) does not give the
	// link's name back: not a Masquerade anyone could ask to remove.
	return m, m.Validate() == nil
}

// chainSourceCheck reads back the SourceCheck a plain rule of link's raw
// chain stands for; ok is false for anything else.
func (f *xtFamily) chainSourceCheck(link string, e []byte) (SourceCheck, bool) {
	ms := f.matches(e)
	if v, ok := f.standardVerdict(e); !ok || v != verdictDrop || len(ms) != 1 ||
		xtString(ms[0][xtName:xtName+xtNameLen]) != rpfilterMatch || len(ms[0]) != rpfilterMatchSize ||
		ms[0][xtHeaderSize] != rpfilterInvert || e[f.invflags]&iptInvViaIn != 0 {
		return SourceCheck{}, false
	}
	s := SourceCheck{Link: link, Iface: xtString(e[f.iniface : f.iniface+ifnameSize])}
	return s, s.Validate() == nil
}
