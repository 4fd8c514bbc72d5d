//go:build linux && (amd64 || arm64 || riscv64 || loong64 || ppc64le || mips64le)

package firewall

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
)

// The per-link chain layout, for kernels without the comment match
// (xt_comment), where a rule cannot carry its owner's name:
//
//	-t nat -N vpn-pppssh-<link>
//	-t nat -A POSTROUTING -j vpn-pppssh-<link>
//	-t nat -A vpn-pppssh-<link> -s <Source> [! -o <NotOut>] -j MASQUERADE
//
// in the nat table of the masquerade's family, and for source checks
//
//	-t raw -N vpn-pppssh-<link>
//	-t raw -A PREROUTING -j vpn-pppssh-<link>
//	-t raw -A vpn-pppssh-<link> -i <Iface> -m rpfilter --invert -j DROP
//
// in ip6tables' raw table. The chain is ours by its name, so cleanup finds
// a link's rules by looking the chain up; the one jump to it is found by
// its target. The chain and its jump go when its last rule goes.

const (
	chainPrefix = "vpn-pppssh-"
	// maxChainLen is iptables' limit for a chain name (XT_EXTENSION_MAXNAMELEN - 1).
	maxChainLen = 28
	// hashedChainLink is how much of a long link name a chain name keeps.
	hashedChainLink = 8
)

// chainName is the chain of link: "vpn-pppssh-<link>", or for links too
// long for that, "vpn-pppssh-<first 8 characters>~<8 hex digits of the
// name's SHA-256>" ('~' cannot occur in a link name, so the two forms never
// meet).
func chainName(link string) string {
	if len(chainPrefix)+len(link) <= maxChainLen {
		return chainPrefix + link
	}
	sum := sha256.Sum256([]byte(link))
	return chainPrefix + link[:hashedChainLink] + "~" + hex.EncodeToString(sum[:4])
}

// linkOfChain returns the link a chain of ours belongs to: the link name
// itself, or for a hashed name the chain name (the link cannot be
// recovered from it; Rules(link) still finds it by computing the name).
func linkOfChain(name string) (string, bool) {
	rest, ok := strings.CutPrefix(name, chainPrefix)
	if !ok || rest == "" {
		return "", false
	}
	if strings.Contains(rest, "~") {
		return name, true
	}
	return rest, ValidateLink(rest) == nil
}

// userChain is a user-defined chain in a table blob: its ERROR head, its
// rules and its closing RETURN entry.
type userChain struct {
	name   string
	head   uint32
	start  uint32 // right after the head: where a jump to the chain points
	rules  []uint32
	footer uint32
}

// first is where a jump to the chain points: right after its head.
func (c userChain) first() uint32 { return c.start }

// userChains lists the table's user-defined chains: every ERROR entry but
// the closing one starts a chain that runs to the next ERROR entry.
func (t *iptTable) userChains() ([]userChain, error) {
	f := t.fam
	offs, err := t.offsets()
	if err != nil {
		return nil, err
	}
	var out []userChain
	for i := 0; i < len(offs)-1; i++ {
		e := t.entry(offs[i])
		if f.targetName(e) != errorTarget {
			continue
		}
		j := i + 1
		for j < len(offs) && f.targetName(t.entry(offs[j])) != errorTarget {
			j++
		}
		if j == i+1 {
			return nil, fmt.Errorf("%w: chain at %d has no RETURN entry", errBlob, offs[i])
		}
		out = append(out, userChain{
			name:   xtString(f.target(e)[xtHeaderSize:]),
			head:   offs[i],
			start:  offs[i+1],
			rules:  slices.Clone(offs[i+1 : j-1]),
			footer: offs[j-1],
		})
		i = j - 1
	}
	return out, nil
}

func (t *iptTable) findChain(name string) (userChain, bool, error) {
	chains, err := t.userChains()
	if err != nil {
		return userChain{}, false, err
	}
	for _, c := range chains {
		if c.name == name {
			return c, true, nil
		}
	}
	return userChain{}, false, nil
}

// endOffset is the offset of the closing ERROR entry, before which new
// chains go.
func (t *iptTable) endOffset() (uint32, error) {
	offs, err := t.offsets()
	if err != nil {
		return 0, err
	}
	if len(offs) == 0 || t.fam.targetName(t.entry(offs[len(offs)-1])) != errorTarget {
		return 0, fmt.Errorf("%w: table %s does not end with an ERROR entry", errBlob, t.name)
	}
	return offs[len(offs)-1], nil
}

// chainHeadEntry is the ERROR entry that starts the user chain name.
func (f *xtFamily) chainHeadEntry(name string) []byte {
	tg := make([]byte, errorTargetSize)
	putXTHeader(tg, errorTargetSize, errorTarget)
	copy(tg[xtHeaderSize:xtHeaderSize+maxChainLen], name)
	return f.build(ruleSpec{target: tg})
}

// jumpEntry is a rule without matches whose standard target is verdict:
// an offset to jump to, or a negative verdict such as verdictReturn.
func (f *xtFamily) jumpEntry(verdict int32) []byte {
	return f.build(ruleSpec{target: standardTargetOf(verdict)})
}

// tracked edits a table and keeps, for every entry, the index it had in
// the table as read (-1 for new entries), as modify needs for counters.
type tracked struct {
	t       *iptTable
	origin  []int
	changed bool
}

func track(t *iptTable) *tracked {
	k := &tracked{t: t, origin: make([]int, t.numEntries)}
	for i := range k.origin {
		k.origin[i] = i
	}
	return k
}

func (k *tracked) insert(pos uint32, e []byte) error {
	idx, err := k.t.insert(pos, e)
	if err != nil {
		return err
	}
	k.origin = slices.Insert(k.origin, idx, -1)
	k.changed = true
	return nil
}

func (k *tracked) remove(pos uint32, head bool) error {
	idx, err := k.t.removeEntry(pos, head)
	if err != nil {
		return err
	}
	k.origin = slices.Delete(k.origin, idx, idx+1)
	k.changed = true
	return nil
}

func (k *tracked) result() []int {
	if !k.changed {
		return nil
	}
	return k.origin
}

// addChainRule adds m's rule to its link's chain in the nat table,
// creating the chain and the jump from POSTROUTING when they are missing.
// It is idempotent.
func addChainRule(m Masquerade) edit {
	return addToChain(hookPostRouting, chainName(m.Link), plainMasqEntry(m))
}

// addToChain adds the entry rule to the user chain name, creating the
// chain and the jump to it from hook h's chain when they are missing. It is
// idempotent.
func addToChain(h int, name string, rule []byte) edit {
	return func(t *iptTable) ([]int, error) {
		f := t.fam
		k := track(t)
		c, ok, err := t.findChain(name)
		if err != nil {
			return nil, err
		}
		if !ok {
			end, err := t.endOffset()
			if err != nil {
				return nil, err
			}
			if err := k.insert(end, f.chainHeadEntry(name)); err != nil {
				return nil, err
			}
			if err := k.insert(end+uint32(f.errorEntrySize()), f.jumpEntry(verdictReturn)); err != nil {
				return nil, err
			}
			if c, _, err = t.findChain(name); err != nil {
				return nil, err
			}
		}
		if !slices.ContainsFunc(c.rules, func(off uint32) bool { return f.sameRule(t.entry(off), rule) }) {
			if err := k.insert(c.footer, rule); err != nil {
				return nil, err
			}
			if c, _, err = t.findChain(name); err != nil {
				return nil, err
			}
		}
		jumps, err := t.jumpsTo(h, c.first())
		if err != nil {
			return nil, err
		}
		if len(jumps) == 0 {
			// The chain lies after the built-in chains, so it moves by
			// the size of the jump inserted in front of it.
			if err := k.insert(t.underflow[h], f.jumpEntry(int32(c.first())+int32(f.jumpEntrySize()))); err != nil {
				return nil, err
			}
		}
		return k.result(), nil
	}
}

// jumpsTo returns the rules of hook h's chain whose standard target jumps
// to off.
func (t *iptTable) jumpsTo(h int, off uint32) ([]uint32, error) {
	chain, err := t.chainEntries(h)
	if err != nil {
		return nil, err
	}
	var out []uint32
	for _, o := range chain {
		if v, ok := t.fam.standardVerdict(t.entry(o)); ok && v >= 0 && uint32(v) == off {
			out = append(out, o)
		}
	}
	return out, nil
}

// removeChainRules removes the rules of chain name for which match is
// true, and the chain with its jumps from hook h's chain when no rule is
// left (match nil: every rule).
func removeChainRules(h int, name string, match func(e []byte) bool) edit {
	return func(t *iptTable) ([]int, error) {
		k := track(t)
		c, ok, err := t.findChain(name)
		if err != nil || !ok {
			return nil, err
		}
		for i := len(c.rules) - 1; i >= 0; i-- {
			if match == nil || match(t.entry(c.rules[i])) {
				if err := k.remove(c.rules[i], false); err != nil {
					return nil, err
				}
			}
		}
		if c, _, err = t.findChain(name); err != nil {
			return nil, err
		}
		if len(c.rules) == 0 {
			if err := k.deleteChain(h, c); err != nil {
				return nil, err
			}
		}
		return k.result(), nil
	}
}

// deleteChain removes an empty chain of ours and the jumps to it from hook
// h's chain. A jump from anywhere else (an admin's rule) stops it: removing
// the chain under that rule would leave it pointing elsewhere.
func (k *tracked) deleteChain(h int, c userChain) error {
	t := k.t
	jumps, err := t.jumpsTo(h, c.first())
	if err != nil {
		return err
	}
	for i := len(jumps) - 1; i >= 0; i-- {
		if err := k.remove(jumps[i], false); err != nil {
			return err
		}
	}
	c, ok, err := t.findChain(c.name)
	if err != nil || !ok {
		return err
	}
	offs, err := t.offsets()
	if err != nil {
		return err
	}
	for _, o := range offs {
		if v, ok := t.fam.standardVerdict(t.entry(o)); ok && v >= 0 && uint32(v) == c.first() && o != c.head {
			return fmt.Errorf("chain %s is still the target of the rule at %d", c.name, o)
		}
	}
	if err := k.remove(c.footer, false); err != nil {
		return err
	}
	return k.remove(c.head, true)
}
