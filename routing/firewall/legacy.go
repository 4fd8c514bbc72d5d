//go:build linux && (amd64 || arm64 || riscv64 || loong64 || ppc64le || mips64le)

package firewall

import (
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

const (
	natTable       = "nat"
	replaceRetries = 5
)

type legacyBackend struct {
	mu   sync.Mutex
	nsFD int // -1: the calling thread's network namespace
	// chains: the kernel has no comment match, so rules go into a chain
	// per link (legacy_chain.go) instead of carrying a comment.
	chains bool
	// noMasq names what is missing when the kernel has no MASQUERADE.
	noMasq error
}

// extensionProbe reports whether the kernel has the match (target false)
// or target of that name, as libiptc asks (IPT_SO_GET_REVISION_MATCH or
// _TARGET), which loads its module on demand like a rule would.
type extensionProbe func(fd int, name string, target bool) (bool, error)

// NewLegacyNS returns the legacy iptables backend bound to the network
// namespace that nsFD refers to (-1 = the calling thread's namespace). The
// caller keeps nsFD open while the backend is in use. The nat table is read
// once to check that the kernel has it, and the kernel is asked for the
// comment match: without it (a minimal kernel), the rules go into a chain
// per link, and Name says so.
func NewLegacyNS(nsFD int) (Backend, error) { return newLegacy(nsFD, kernelHasExtension) }

func newLegacy(nsFD int, probe extensionProbe) (*legacyBackend, error) {
	b := &legacyBackend{nsFD: nsFD}
	fd, err := openRawSocket(nsFD)
	if err != nil {
		return nil, fmt.Errorf("checking legacy iptables: %w", err)
	}
	defer unix.Close(fd)
	t, err := readTable(fd, natTable)
	if err != nil {
		return nil, fmt.Errorf("checking legacy iptables: %w", err)
	}
	if !t.hookValid(hookPostRouting) {
		return nil, fmt.Errorf("checking legacy iptables: table %s has no POSTROUTING chain", natTable)
	}
	comment, err := probe(fd, commentMatch, false)
	if err != nil {
		return nil, fmt.Errorf("checking legacy iptables: asking for the %s match: %w", commentMatch, err)
	}
	b.chains = !comment
	masq, err := probe(fd, masqTarget, true)
	if err != nil {
		return nil, fmt.Errorf("checking legacy iptables: asking for the %s target: %w", masqTarget, err)
	}
	if !masq {
		b.noMasq = fmt.Errorf("the kernel lacks the %s target (module xt_MASQUERADE): %w", masqTarget, unix.ENOENT)
	}
	return b, nil
}

// Name is NameLegacy, or NameLegacyChains when the kernel has no comment
// match and the rules live in per-link chains.
func (b *legacyBackend) Name() string {
	if b.chains {
		return NameLegacyChains
	}
	return NameLegacy
}

// edit computes the new table from the current one. It returns, for each
// entry of the new table, the index of the entry it was in the old table
// (-1 for a new entry), or nil when nothing needs to change.
type edit func(t *iptTable) (origin []int, err error)

// modify runs a read-modify-replace cycle on the nat table, starting over
// when the table changed under us (EAGAIN), and carries the counters of the
// entries that stay over to the new table.
func (b *legacyBackend) modify(change edit) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	fd, err := openRawSocket(b.nsFD)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	for attempt := 1; ; attempt++ {
		err := b.modifyOnce(fd, change)
		if !errors.Is(err, unix.EAGAIN) || attempt == replaceRetries {
			return err
		}
	}
}

func (b *legacyBackend) modifyOnce(fd int, change edit) error {
	t, err := readTable(fd, natTable)
	if err != nil {
		return err
	}
	oldEntries := t.numEntries
	origin, err := change(t)
	if err != nil || origin == nil {
		return err
	}
	old, err := replaceTable(fd, t, oldEntries)
	if err != nil {
		return err
	}
	counters := make([]byte, len(origin)*countersSize)
	for i, o := range origin {
		if o >= 0 && (o+1)*countersSize <= len(old) {
			copy(counters[i*countersSize:], old[o*countersSize:(o+1)*countersSize])
		}
	}
	// The rule change is in; losing the packet counts of the other rules
	// to a concurrent change is not worth failing it for.
	_ = addCounters(fd, natTable, counters)
	return nil
}

func (b *legacyBackend) Add(m Masquerade) error {
	if err := m.Validate(); err != nil {
		return fmt.Errorf("adding masquerade for %s: %w", m.Source, err)
	}
	if b.noMasq != nil {
		return fmt.Errorf("adding masquerade for %s: %w", m.Source, b.noMasq)
	}
	if b.chains {
		if err := b.modify(addChainRule(m)); err != nil {
			return fmt.Errorf("adding masquerade for %s in chain %s: %w", m.Source, chainName(m.Link), err)
		}
		return nil
	}
	want := masqEntry(m)
	err := b.modify(func(t *iptTable) ([]int, error) {
		chain, err := t.chainEntries(hookPostRouting)
		if err != nil {
			return nil, err
		}
		for _, off := range chain {
			if sameRule(t.entry(off), want) {
				return nil, nil
			}
		}
		idx, err := t.insert(t.underflow[hookPostRouting], want)
		if err != nil {
			return nil, err
		}
		origin := make([]int, t.numEntries)
		for i := range origin {
			switch {
			case i < idx:
				origin[i] = i
			case i == idx:
				origin[i] = -1
			default:
				origin[i] = i - 1
			}
		}
		return origin, nil
	})
	if err != nil {
		return fmt.Errorf("adding masquerade for %s: %w", m.Source, err)
	}
	return nil
}

func (b *legacyBackend) Remove(m Masquerade) error {
	if err := m.Validate(); err != nil {
		return fmt.Errorf("removing masquerade for %s: %w", m.Source, err)
	}
	// Either layout: the rule may be from before the kernel changed.
	want, plain := masqEntry(m), plainMasqEntry(m)
	err := b.modify(removeMatching(func(e []byte) bool { return sameRule(e, want) }))
	if err == nil {
		err = b.modify(removeChainRules(chainName(m.Link), func(e []byte) bool { return sameRule(e, plain) }))
	}
	if err != nil {
		return fmt.Errorf("removing masquerade for %s: %w", m.Source, err)
	}
	return nil
}

func (b *legacyBackend) RemoveLink(link string) error {
	if err := ValidateLink(link); err != nil {
		return fmt.Errorf("removing masquerades of link %q: %w", link, err)
	}
	err := b.modify(removeMatching(func(e []byte) bool {
		c, ok := entryComment(e)
		if !ok {
			return false
		}
		l, ok := linkOfComment(c)
		return ok && l == link
	}))
	if err == nil {
		err = b.modify(removeChainRules(chainName(link), nil))
	}
	if err != nil {
		return fmt.Errorf("removing masquerades of link %q: %w", link, err)
	}
	return nil
}

// removeMatching removes the POSTROUTING rules for which match is true.
func removeMatching(match func(e []byte) bool) edit {
	return func(t *iptTable) ([]int, error) {
		chain, err := t.chainEntries(hookPostRouting)
		if err != nil {
			return nil, err
		}
		var doomed []uint32
		for _, off := range chain {
			if match(t.entry(off)) {
				doomed = append(doomed, off)
			}
		}
		if len(doomed) == 0 {
			return nil, nil
		}
		removed := make(map[int]bool)
		for i := len(doomed) - 1; i >= 0; i-- { // back to front: earlier offsets stay valid
			idx, err := t.remove(doomed[i])
			if err != nil {
				return nil, err
			}
			removed[idx] = true
		}
		origin := make([]int, 0, t.numEntries)
		for i := 0; len(origin) < int(t.numEntries); i++ {
			if !removed[i] {
				origin = append(origin, i)
			}
		}
		return origin, nil
	}
}

func (b *legacyBackend) Rules(link string) ([]Masquerade, error) {
	if link != "" {
		if err := ValidateLink(link); err != nil {
			return nil, fmt.Errorf("listing masquerades: %w", err)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	out, err := b.rules(link)
	if err != nil {
		return nil, fmt.Errorf("listing masquerades: %w", err)
	}
	return out, nil
}

func (b *legacyBackend) rules(link string) ([]Masquerade, error) {
	fd, err := openRawSocket(b.nsFD)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var t *iptTable
	for attempt := 1; ; attempt++ {
		t, err = readTable(fd, natTable)
		if err == nil || !errors.Is(err, unix.EAGAIN) || attempt == replaceRetries {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	chain, err := t.chainEntries(hookPostRouting)
	if err != nil {
		return nil, err
	}
	var out []Masquerade
	for _, off := range chain {
		c, ok := entryComment(t.entry(off))
		if !ok {
			continue
		}
		m, ok := parseComment(c)
		if ok && (link == "" || m.Link == link) {
			out = append(out, m)
		}
	}
	chains, err := t.userChains()
	if err != nil {
		return nil, err
	}
	for _, c := range chains {
		owner, ok := linkOfChain(c.name)
		switch {
		case !ok:
			continue
		case link != "" && c.name != chainName(link):
			continue
		case link != "":
			owner = link
		}
		for _, off := range c.rules {
			if m, ok := chainRule(owner, t.entry(off)); ok {
				out = append(out, m)
			}
		}
	}
	return out, nil
}
