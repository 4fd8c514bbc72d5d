//go:build linux && (amd64 || arm64 || riscv64 || loong64 || ppc64le || mips64le)

package firewall

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vpn-pppssh/vpn-pppssh/internal/flock"
)

const (
	natTable       = "nat"
	rawTable       = "raw"
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
	probe  extensionProbe
	// ready holds the IPv6 tables found usable (need), under mu.
	ready map[xtTable]bool
}

// extensionProbe reports whether the kernel has family f's match (target
// false) or target of that name, as libiptc asks (IPT_SO_GET_REVISION_MATCH
// or _TARGET), which loads its module on demand like a rule would.
type extensionProbe func(fd int, f *xtFamily, name string, target bool) (bool, error)

// NewLegacyNS returns the legacy iptables backend bound to the network
// namespace that nsFD refers to (-1 = the calling thread's namespace). The
// caller keeps nsFD open while the backend is in use. The IPv4 nat table is
// read once to check that the kernel has it, and the kernel is asked for
// the comment match: without it (a minimal kernel), the rules go into a
// chain per link, and Name says so. The IPv6 tables are only looked at
// when an IPv6 rule is added: a kernel without them fails that with an
// error naming the missing module.
func NewLegacyNS(nsFD int) (Backend, error) { return newLegacy(nsFD, kernelHasExtension) }

func newLegacy(nsFD int, probe extensionProbe) (*legacyBackend, error) {
	b := &legacyBackend{nsFD: nsFD, probe: probe, ready: map[xtTable]bool{}}
	fd, err := openRawSocket(nsFD, famIPv4)
	if err != nil {
		return nil, fmt.Errorf("checking legacy iptables: %w", err)
	}
	defer unix.Close(fd)
	t, err := readTable(fd, famIPv4, natTable)
	if err != nil {
		return nil, fmt.Errorf("checking legacy iptables: %w", err)
	}
	if !t.hookValid(hookPostRouting) {
		return nil, fmt.Errorf("checking legacy iptables: table %s has no POSTROUTING chain", natTable)
	}
	comment, err := probe(fd, famIPv4, commentMatch, false)
	if err != nil {
		return nil, fmt.Errorf("checking legacy iptables: asking for the %s match: %w", commentMatch, err)
	}
	b.chains = !comment
	masq, err := probe(fd, famIPv4, masqTarget, true)
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

// need checks that the kernel has the IPv6 table x and what our rules in
// it use, reading the table (which loads its module on demand) and asking
// for the extension. The IPv4 nat table was checked by newLegacy.
func (b *legacyBackend) need(x xtTable) error {
	if x == nat4 {
		return b.noMasq
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ready[x] {
		return nil
	}
	module, ext, extModule, target := "ip6table_nat", masqTarget, "xt_MASQUERADE", true
	if x == raw6 {
		module, ext, extModule, target = "ip6table_raw", rpfilterMatch, "ip6t_rpfilter", false
	}
	fd, err := openRawSocket(b.nsFD, x.fam)
	if err != nil {
		return fmt.Errorf("the kernel has no IPv6 %s table (%s): %w", x.name, module, err)
	}
	defer unix.Close(fd)
	t, err := readTable(fd, x.fam, x.name)
	if err != nil {
		return fmt.Errorf("the kernel has no IPv6 %s table (%s): %w", x.name, module, err)
	}
	if !t.hookValid(x.hook) {
		return fmt.Errorf("the kernel's IPv6 %s table has no hook %d", x.name, x.hook)
	}
	has, err := b.probe(fd, x.fam, ext, target)
	if err != nil {
		return fmt.Errorf("asking the kernel for the IPv6 %s extension: %w", ext, err)
	}
	if !has {
		return fmt.Errorf("the kernel lacks the IPv6 %s extension (%s): %w", ext, extModule, unix.ENOENT)
	}
	b.ready[x] = true
	return nil
}

// present reports whether table x may hold rules of ours: an IPv6 table
// the namespace has not set up has none, and is not set up by looking.
func (b *legacyBackend) present(x xtTable) bool {
	if x.fam == famIPv4 {
		return true
	}
	names, ok := tablesInUse(b.nsFD, x.fam)
	return !ok || names[x.name]
}

// edit computes the new table from the current one. It returns, for each
// entry of the new table, the index of the entry it was in the old table
// (-1 for a new entry), or nil when nothing needs to change.
type edit func(t *iptTable) (origin []int, err error)

// modify runs a read-modify-replace cycle on table x, starting over when
// the table changed under us (EAGAIN), and carries the counters of the
// entries that stay over to the new table.
func (b *legacyBackend) modify(x xtTable, change edit) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	unlock, err := lockXtables()
	if err != nil {
		return err
	}
	defer unlock()
	fd, err := openRawSocket(b.nsFD, x.fam)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	for attempt := 1; ; attempt++ {
		err := modifyOnce(fd, x, change)
		if !errors.Is(err, unix.EAGAIN) || attempt == replaceRetries {
			return err
		}
	}
}

func modifyOnce(fd int, x xtTable, change edit) error {
	t, err := readTable(fd, x.fam, x.name)
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
	_ = addCounters(fd, x.fam, x.name, counters)
	return nil
}

// masqTable is the nat table of m's family.
func masqTable(m Masquerade) xtTable {
	if masqFam(m) == famIPv4 {
		return nat4
	}
	return nat6
}

func (b *legacyBackend) Add(m Masquerade) error {
	if err := m.Validate(); err != nil {
		return fmt.Errorf("adding masquerade for %s: %w", m.Source, err)
	}
	x := masqTable(m)
	if err := b.need(x); err != nil {
		return fmt.Errorf("adding masquerade for %s: %w", m.Source, err)
	}
	if b.chains {
		if err := b.modify(x, addChainRule(m)); err != nil {
			return fmt.Errorf("adding masquerade for %s in chain %s: %w", m.Source, chainName(m.Link), err)
		}
		return nil
	}
	if err := b.modify(x, appendRule(x.hook, masqEntry(m))); err != nil {
		return fmt.Errorf("adding masquerade for %s: %w", m.Source, err)
	}
	return nil
}

// appendRule appends the entry want to hook h's chain unless the same rule
// is there already.
func appendRule(h int, want []byte) edit {
	return func(t *iptTable) ([]int, error) {
		chain, err := t.chainEntries(h)
		if err != nil {
			return nil, err
		}
		for _, off := range chain {
			if t.fam.sameRule(t.entry(off), want) {
				return nil, nil
			}
		}
		k := track(t)
		if err := k.insert(t.underflow[h], want); err != nil {
			return nil, err
		}
		return k.result(), nil
	}
}

func (b *legacyBackend) Remove(m Masquerade) error {
	if err := m.Validate(); err != nil {
		return fmt.Errorf("removing masquerade for %s: %w", m.Source, err)
	}
	if err := b.removeRule(masqTable(m), chainName(m.Link), masqEntry(m), plainMasqEntry(m)); err != nil {
		return fmt.Errorf("removing masquerade for %s: %w", m.Source, err)
	}
	return nil
}

// removeRule removes a rule of ours from table x in either layout: the
// entry want from the hook's chain, the entry plain from chain name (the
// rule may be from before the kernel changed).
func (b *legacyBackend) removeRule(x xtTable, name string, want, plain []byte) error {
	if !b.present(x) {
		return nil
	}
	err := b.modify(x, removeMatching(x.hook, func(e []byte) bool { return x.fam.sameRule(e, want) }))
	if err == nil {
		err = b.modify(x, removeChainRules(x.hook, name, func(e []byte) bool { return x.fam.sameRule(e, plain) }))
	}
	return err
}

func (b *legacyBackend) RemoveLink(link string) error {
	if err := ValidateLink(link); err != nil {
		return fmt.Errorf("removing firewall rules of link %q: %w", link, err)
	}
	var errs []error
	for _, x := range []xtTable{nat4, nat6, raw6} {
		if !b.present(x) {
			continue
		}
		err := b.modify(x, removeMatching(x.hook, func(e []byte) bool {
			c, ok := x.fam.entryComment(e)
			if !ok {
				return false
			}
			l, ok := linkOfComment(c)
			return ok && l == link
		}))
		if err == nil {
			err = b.modify(x, removeChainRules(x.hook, chainName(link), nil))
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", x, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("removing firewall rules of link %q: %w", link, err)
	}
	return nil
}

// removeMatching removes the rules of hook h's chain for which match is
// true.
func removeMatching(h int, match func(e []byte) bool) edit {
	return func(t *iptTable) ([]int, error) {
		chain, err := t.chainEntries(h)
		if err != nil {
			return nil, err
		}
		k := track(t)
		for i := len(chain) - 1; i >= 0; i-- { // back to front: earlier offsets stay valid
			if match(t.entry(chain[i])) {
				if err := k.remove(chain[i], false); err != nil {
					return nil, err
				}
			}
		}
		return k.result(), nil
	}
}

func (b *legacyBackend) Rules(link string) ([]Masquerade, error) {
	if link != "" {
		if err := ValidateLink(link); err != nil {
			return nil, fmt.Errorf("listing masquerades: %w", err)
		}
	}
	var out []Masquerade
	for _, x := range []xtTable{nat4, nat6} {
		rs, err := listRules(b, x, link, parseComment, func(m Masquerade) string { return m.Link }, x.fam.chainMasq)
		if err != nil {
			return nil, fmt.Errorf("listing masquerades: %w", err)
		}
		out = append(out, rs...)
	}
	return out, nil
}

// listRules reads our rules of kind R from table x, for link or for every
// link (""): those in the hook's chain by their comment, those in chains
// of ours by the chain's name.
func listRules[R any](b *legacyBackend, x xtTable, link string,
	fromComment func(string) (R, bool), owner func(R) string,
	fromChain func(link string, e []byte) (R, bool)) ([]R, error) {
	if !b.present(x) {
		return nil, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	fd, err := openRawSocket(b.nsFD, x.fam)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var t *iptTable
	for attempt := 1; ; attempt++ {
		t, err = readTable(fd, x.fam, x.name)
		if err == nil || !errors.Is(err, unix.EAGAIN) || attempt == replaceRetries {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	chain, err := t.chainEntries(x.hook)
	if err != nil {
		return nil, err
	}
	var out []R
	for _, off := range chain {
		c, ok := x.fam.entryComment(t.entry(off))
		if !ok {
			continue
		}
		r, ok := fromComment(c)
		if ok && (link == "" || owner(r) == link) {
			out = append(out, r)
		}
	}
	chains, err := t.userChains()
	if err != nil {
		return nil, err
	}
	for _, c := range chains {
		name, ok := linkOfChain(c.name)
		switch {
		case !ok:
			continue
		case link != "" && c.name != chainName(link):
			continue
		case link != "":
			name = link
		}
		for _, off := range c.rules {
			if r, ok := fromChain(name, t.entry(off)); ok {
				out = append(out, r)
			}
		}
	}
	return out, nil
}

// xtablesLock is the lock iptables and ip6tables take around their own
// read-modify-replace (XT_LOCK_NAME; `iptables -w` waits for it): the
// kernel's own check (EAGAIN) sees only a changed number of entries, so an
// admin's rule replaced, zeroed, or deleted and added meanwhile would be
// lost without it.
const xtablesLock = "/run/xtables.lock"

// xtablesLockWait bounds the wait for it, as `iptables -w 10` would (a
// variable for the tests).
var xtablesLockWait = 10 * time.Second

// lockXtables takes the xtables lock and returns the function that
// releases it.
func lockXtables() (func(), error) {
	release, err := flock.Wait(xtablesLock, xtablesLockWait)
	if err != nil {
		return nil, fmt.Errorf("taking the xtables lock (held by an iptables?): %w", err)
	}
	return release, nil
}
