//go:build linux && (amd64 || arm64 || riscv64 || loong64 || ppc64le || mips64le)

package firewall

import (
	"bytes"
	"errors"
	"fmt"
)

// iptTable is an ip_tables or ip6_tables table as the kernel hands it out
// and takes it back: the entry blob and the offsets of each hook's first
// rule (hookEntry) and policy entry (underflow) in it. fam says how its
// entries are laid out.
type iptTable struct {
	fam        *xtFamily
	name       string
	validHooks uint32
	hookEntry  [numHooks]uint32
	underflow  [numHooks]uint32
	numEntries uint32
	entries    []byte
}

var errBlob = errors.New("malformed iptables entry blob")

func (t *iptTable) hookValid(h int) bool { return t.validHooks&(1<<h) != 0 }

// clone returns a deep copy of t.
func (t *iptTable) clone() *iptTable {
	c := *t
	c.entries = bytes.Clone(t.entries)
	return &c
}

// entry returns the bytes of the entry at off (aliasing the blob).
func (t *iptTable) entry(off uint32) []byte {
	next := uint32(le.Uint16(t.entries[off+uint32(t.fam.nextOffset):]))
	return t.entries[off : off+next]
}

// offsets walks the blob, checks the structure of every entry and returns
// the offset of each one.
func (t *iptTable) offsets() ([]uint32, error) {
	f := t.fam
	es := uint32(f.entrySize)
	var offs []uint32
	size := uint32(len(t.entries))
	for off := uint32(0); off < size; {
		if off+es > size {
			return nil, fmt.Errorf("%w: entry at %d runs past the end (%d)", errBlob, off, size)
		}
		e := t.entries[off:]
		tOff := uint32(le.Uint16(e[f.targetOffset:]))
		next := uint32(le.Uint16(e[f.nextOffset:]))
		switch {
		case next%xtAlign != 0 || off+next > size:
			return nil, fmt.Errorf("%w: entry at %d has bad size %d", errBlob, off, next)
		case tOff < es || tOff%xtAlign != 0 || tOff+xtHeaderSize > next:
			return nil, fmt.Errorf("%w: entry at %d has bad target offset %d", errBlob, off, tOff)
		case le.Uint16(e[tOff:]) < xtHeaderSize || tOff+uint32(le.Uint16(e[tOff:])) > next:
			return nil, fmt.Errorf("%w: entry at %d has bad target size %d", errBlob, off, le.Uint16(e[tOff:]))
		}
		for m := es; m < tOff; {
			ms := uint32(le.Uint16(e[m:]))
			if ms < xtHeaderSize || ms%xtAlign != 0 || m+ms > tOff {
				return nil, fmt.Errorf("%w: entry at %d has a bad match at %d", errBlob, off, m)
			}
			m += ms
		}
		offs = append(offs, off)
		off += next
	}
	if uint32(len(offs)) != t.numEntries {
		return nil, fmt.Errorf("%w: %d entries, header says %d", errBlob, len(offs), t.numEntries)
	}
	return offs, nil
}

// xtString reads a NUL-terminated name field.
func xtString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// target returns the target (header and payload) of entry e.
func (f *xtFamily) target(e []byte) []byte {
	tOff := int(le.Uint16(e[f.targetOffset:]))
	return e[tOff : tOff+int(le.Uint16(e[tOff:]))]
}

func (f *xtFamily) targetName(e []byte) string {
	return xtString(f.target(e)[xtName : xtName+xtNameLen])
}

// standardVerdict returns the verdict of a standard target entry.
func (f *xtFamily) standardVerdict(e []byte) (int32, bool) {
	tg := f.target(e)
	if len(tg) != standardTargetSize || f.targetName(e) != standardTarget {
		return 0, false
	}
	return int32(le.Uint32(tg[xtHeaderSize:])), true
}

func (f *xtFamily) setStandardVerdict(e []byte, v int32) {
	le.PutUint32(f.target(e)[xtHeaderSize:], uint32(v))
}

// matches returns each match (header and payload) of entry e.
func (f *xtFamily) matches(e []byte) [][]byte {
	var ms [][]byte
	tOff := int(le.Uint16(e[f.targetOffset:]))
	for m := f.entrySize; m < tOff; {
		size := int(le.Uint16(e[m:]))
		ms = append(ms, e[m:m+size])
		m += size
	}
	return ms
}

// entryIndex returns the index of the entry at off.
func entryIndex(offs []uint32, off uint32) (int, bool) {
	for i, o := range offs {
		if o == off {
			return i, true
		}
	}
	return 0, false
}

// insert puts entry e into the blob before the entry at pos, as a rule of
// the chain that entry belongs to, and returns the new entry's index.
//
// Everything that pointed past pos moves by len(e): the hooks' first rules
// and policy entries, and standard-target jumps. What pointed at pos itself
// keeps pointing there and so reaches the new rule first: a hook whose chain
// started at pos, a jump to the start of a chain, and a "fall through" from
// the rule right before pos (libiptc encodes it as a jump to the next
// entry). Only a policy entry at pos moves, since the new rule goes in front
// of it.
func (t *iptTable) insert(pos uint32, e []byte) (int, error) {
	f := t.fam
	offs, err := t.offsets()
	if err != nil {
		return 0, err
	}
	idx, ok := entryIndex(offs, pos)
	if !ok {
		return 0, fmt.Errorf("%w: no entry at offset %d", errBlob, pos)
	}
	if len(e)%xtAlign != 0 || len(e) < f.jumpEntrySize() {
		return 0, fmt.Errorf("%w: bad new entry size %d", errBlob, len(e))
	}
	n := uint32(len(e))
	for _, off := range offs {
		ent := t.entry(off)
		if v, ok := f.standardVerdict(ent); ok && v >= 0 && uint32(v) > pos {
			f.setStandardVerdict(ent, v+int32(n))
		}
	}
	for h := range numHooks {
		if !t.hookValid(h) {
			continue
		}
		if t.hookEntry[h] > pos {
			t.hookEntry[h] += n
		}
		if t.underflow[h] >= pos {
			t.underflow[h] += n
		}
	}
	blob := make([]byte, 0, len(t.entries)+len(e))
	blob = append(blob, t.entries[:pos]...)
	blob = append(blob, e...)
	t.entries = append(blob, t.entries[pos:]...)
	t.numEntries++
	return idx, nil
}

// remove deletes the rule entry at pos; it is the inverse of insert. It
// refuses to remove a chain's policy or head entry.
func (t *iptTable) remove(pos uint32) (int, error) { return t.removeEntry(pos, false) }

// removeEntry is remove; with head it may also delete a user chain's
// ERROR head entry (the last step of deleting a chain of ours).
func (t *iptTable) removeEntry(pos uint32, head bool) (int, error) {
	f := t.fam
	offs, err := t.offsets()
	if err != nil {
		return 0, err
	}
	idx, ok := entryIndex(offs, pos)
	if !ok {
		return 0, fmt.Errorf("%w: no entry at offset %d", errBlob, pos)
	}
	n := uint32(len(t.entry(pos)))
	for h := range numHooks {
		if t.hookValid(h) && t.underflow[h] == pos {
			return 0, fmt.Errorf("%w: entry at %d is a chain policy", errBlob, pos)
		}
	}
	if f.targetName(t.entry(pos)) == errorTarget && (!head || pos+n >= uint32(len(t.entries))) {
		return 0, fmt.Errorf("%w: entry at %d is a chain head", errBlob, pos)
	}
	for _, off := range offs {
		if v, ok := f.standardVerdict(t.entry(off)); ok && v >= 0 && uint32(v) > pos && uint32(v) < pos+n {
			return 0, fmt.Errorf("%w: entry at %d jumps into the middle of entry %d", errBlob, off, pos)
		}
	}
	for _, off := range offs {
		ent := t.entry(off)
		if v, ok := f.standardVerdict(ent); ok && v >= 0 && uint32(v) > pos {
			f.setStandardVerdict(ent, v-int32(n))
		}
	}
	for h := range numHooks {
		if !t.hookValid(h) {
			continue
		}
		if t.hookEntry[h] > pos {
			t.hookEntry[h] -= n
		}
		if t.underflow[h] > pos {
			t.underflow[h] -= n
		}
	}
	t.entries = append(t.entries[:pos:pos], t.entries[pos+n:]...)
	t.numEntries--
	return idx, nil
}

// chainEntries returns the offsets of the rules of hook h's built-in chain,
// policy excluded.
func (t *iptTable) chainEntries(h int) ([]uint32, error) {
	if !t.hookValid(h) {
		return nil, fmt.Errorf("%w: table %s has no hook %d", errBlob, t.name, h)
	}
	offs, err := t.offsets()
	if err != nil {
		return nil, err
	}
	var out []uint32
	for _, off := range offs {
		if off >= t.hookEntry[h] && off < t.underflow[h] {
			out = append(out, off)
		}
	}
	return out, nil
}

// putXTHeader fills a match or target header.
func putXTHeader(b []byte, size int, name string) {
	le.PutUint16(b, uint16(size))
	copy(b[xtName:xtName+xtNameLen-1], name)
	b[xtRevision] = 0
}

// sameRule reports whether entry a is the same rule as b, ignoring the
// bookkeeping the kernel fills in (nfcache, comefrom, counters).
func (f *xtFamily) sameRule(a, b []byte) bool {
	return len(a) == len(b) &&
		bytes.Equal(a[:f.nfcache], b[:f.nfcache]) &&
		bytes.Equal(a[f.targetOffset:f.comefrom], b[f.targetOffset:f.comefrom]) &&
		bytes.Equal(a[f.entrySize:], b[f.entrySize:])
}

// entryComment returns the text of entry e's comment match, if it has one.
func (f *xtFamily) entryComment(e []byte) (string, bool) {
	for _, m := range f.matches(e) {
		if len(m) == commentMatchSize && xtString(m[xtName:xtName+xtNameLen]) == commentMatch {
			return xtString(m[xtHeaderSize:]), true
		}
	}
	return "", false
}
