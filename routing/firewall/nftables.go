//go:build linux

package firewall

import (
	"errors"
	"fmt"
	"sync"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// Names of the nftables objects owned by vpn-pppssh. The same names are
// used in the ip family (IPv4) and the ip6 family (IPv6); NFTRPFChain
// exists in the ip6 table only.
const (
	NFTTable    = "vpn-pppssh"
	NFTChain    = "postrouting"
	NFTRPFChain = "prerouting"
)

// udataComment is the type of the comment TLV in a rule's user data, as
// the nft tool writes and shows it (NFTNL_UDATA_RULE_COMMENT).
const udataComment = 0

type nftBackend struct {
	mu   sync.Mutex
	nsFD int // -1: the calling thread's network namespace
}

// NewNFTablesNS returns the nftables backend bound to the network namespace
// that nsFD refers to (-1 = the calling thread's namespace). The caller
// keeps nsFD open while the backend is in use. The kernel's support for a
// nat chain in the ip family is checked first, without leaving anything
// behind; IPv6 support is not required (see Probe).
func NewNFTablesNS(nsFD int) (Backend, error) {
	b := &nftBackend{nsFD: nsFD}
	if err := b.check(); err != nil {
		return nil, fmt.Errorf("checking nftables: %w", err)
	}
	return b, nil
}

func (b *nftBackend) Name() string { return NameNFTables }

func (b *nftBackend) conn() (*nftables.Conn, error) {
	var opts []nftables.ConnOption
	if b.nsFD >= 0 {
		opts = append(opts, nftables.WithNetNSFd(b.nsFD))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("opening nftables netlink connection: %w", err)
	}
	return c, nil
}

// nftFamilies are the families our tables live in, IPv4 first.
var nftFamilies = []nftables.TableFamily{nftables.TableFamilyIPv4, nftables.TableFamilyIPv6}

func nftTable(fam nftables.TableFamily) *nftables.Table {
	return &nftables.Table{Name: NFTTable, Family: fam}
}

// nftChain is the nat chain of our table t.
func nftChain(t *nftables.Table) *nftables.Chain {
	return &nftables.Chain{
		Name:     NFTChain,
		Table:    t,
		Type:     nftables.ChainTypeNAT,
		Hooknum:  nftables.ChainHookPostrouting,
		Priority: nftables.ChainPriorityNATSource,
	}
}

// nftRPFChain is the source check chain of our ip6 table t: a filter chain
// on prerouting at priority raw, ahead of conntrack.
func nftRPFChain(t *nftables.Table) *nftables.Chain {
	return &nftables.Chain{
		Name:     NFTRPFChain,
		Table:    t,
		Type:     nftables.ChainTypeFilter,
		Hooknum:  nftables.ChainHookPrerouting,
		Priority: nftables.ChainPriorityRaw,
	}
}

// familyName is how nft names fam.
func familyName(fam nftables.TableFamily) string {
	if fam == nftables.TableFamilyIPv6 {
		return "ip6"
	}
	return "ip"
}

// check makes sure the kernel speaks nftables and accepts a nat chain on the
// postrouting hook of the ip family. When our table does not exist yet it is
// created with its chain and deleted again in one transaction.
func (b *nftBackend) check() error {
	c, err := b.conn()
	if err != nil {
		return err
	}
	st, err := b.read(c, nftables.TableFamilyIPv4)
	if err != nil {
		return err
	}
	if st.table {
		return nil
	}
	return tryNATChain(c, nftables.TableFamilyIPv4)
}

// tryNATChain creates our table of family fam with its nat chain and
// deletes it again in one transaction, to learn whether the kernel has nat
// for that family. It must only be called when our table does not exist.
func tryNATChain(c *nftables.Conn, fam nftables.TableFamily) error {
	t := nftTable(fam)
	c.CreateTable(t) // exclusive: never deletes a table someone else just made
	c.AddChain(nftChain(t))
	c.DelTable(t)
	if err := c.Flush(); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return nil
		}
		return fmt.Errorf("trying a nat postrouting chain in family %s: %w", familyName(fam), err)
	}
	return nil
}

// nftState is what is installed in our table of one family.
type nftState struct {
	fam         nftables.TableFamily
	table       bool             // our table exists
	chain       bool             // our nat chain exists in it
	rpfChain    bool             // our source check chain exists in it (ip6 only)
	otherChains int              // chains in our table that are not ours
	rules       []*nftables.Rule // of the nat chain
	rpfRules    []*nftables.Rule // of the source check chain
}

func (b *nftBackend) read(c *nftables.Conn, fam nftables.TableFamily) (nftState, error) {
	st := nftState{fam: fam}
	tables, err := c.ListTablesOfFamily(fam)
	if err != nil {
		return st, fmt.Errorf("listing nftables tables of family %s: %w", familyName(fam), err)
	}
	for _, t := range tables {
		if t.Name == NFTTable {
			st.table = true
		}
	}
	if !st.table {
		return st, nil
	}
	chains, err := c.ListChainsOfTableFamily(fam)
	if err != nil {
		return st, fmt.Errorf("listing nftables chains of family %s: %w", familyName(fam), err)
	}
	for _, ch := range chains {
		switch {
		case ch.Table == nil || ch.Table.Name != NFTTable:
		case ch.Name == NFTChain:
			st.chain = true
		case ch.Name == NFTRPFChain && fam == nftables.TableFamilyIPv6:
			st.rpfChain = true
		default:
			st.otherChains++
		}
	}
	t := nftTable(fam)
	if st.chain {
		if st.rules, err = c.GetRules(t, nftChain(t)); err != nil {
			return st, fmt.Errorf("listing rules of %s %s %s: %w", familyName(fam), NFTTable, NFTChain, err)
		}
	}
	if st.rpfChain {
		if st.rpfRules, err = c.GetRules(t, nftRPFChain(t)); err != nil {
			return st, fmt.Errorf("listing rules of %s %s %s: %w", familyName(fam), NFTTable, NFTRPFChain, err)
		}
	}
	return st, nil
}

// ruleComment returns the comment in a rule's user data ("" when none).
func ruleComment(udata []byte) string {
	for len(udata) >= 2 {
		typ, n := udata[0], int(udata[1])
		if len(udata) < 2+n {
			break
		}
		if typ == udataComment {
			v := udata[2 : 2+n]
			for len(v) > 0 && v[len(v)-1] == 0 {
				v = v[:len(v)-1]
			}
			return string(v)
		}
		udata = udata[2+n:]
	}
	return ""
}

// commentUserData is the user data carrying comment, as nft writes it.
func commentUserData(comment string) []byte {
	c := append([]byte(comment), 0)
	return append([]byte{udataComment, byte(len(c))}, c...)
}

// nftMatch picks the rules to delete: chain is NFTChain or NFTRPFChain.
type nftMatch func(chain string, r *nftables.Rule) bool

// removeRetries bounds remove's attempts: a batch that names a rule
// someone else deleted meanwhile fails whole (ENOENT), and is read and
// tried again.
const removeRetries = 3

// remove deletes the rules of our chains in family fam that match, a chain
// of ours that would be left empty, and the whole table when nothing would
// be left in it.
func (b *nftBackend) remove(fam nftables.TableFamily, match nftMatch) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for attempt := 1; ; attempt++ {
		err := b.removeOnce(fam, match)
		if !errors.Is(err, unix.ENOENT) {
			return err
		}
		if attempt == removeRetries {
			return fmt.Errorf("deleting nftables rules of family %s: changed under us %d times: %w", familyName(fam), removeRetries, err)
		}
	}
}

// removeOnce is one read and one batch of remove; b.mu is held.
func (b *nftBackend) removeOnce(fam nftables.TableFamily, match nftMatch) error {
	c, err := b.conn()
	if err != nil {
		return err
	}
	st, err := b.read(c, fam)
	if err != nil {
		return err
	}
	if !st.table {
		return nil
	}
	t := nftTable(fam)
	type doomedRule struct {
		chain *nftables.Chain
		rule  *nftables.Rule
	}
	var doomed []doomedRule
	nat, rpf := 0, 0
	for _, r := range st.rules {
		if match(NFTChain, r) {
			doomed = append(doomed, doomedRule{nftChain(t), r})
			nat++
		}
	}
	for _, r := range st.rpfRules {
		if match(NFTRPFChain, r) {
			doomed = append(doomed, doomedRule{nftRPFChain(t), r})
			rpf++
		}
	}
	switch {
	case len(doomed) == len(st.rules)+len(st.rpfRules) && st.otherChains == 0:
		c.DelTable(t)
	case len(doomed) == 0:
		return nil
	default:
		for _, d := range doomed {
			if err := c.DelRule(&nftables.Rule{Table: t, Chain: d.chain, Handle: d.rule.Handle}); err != nil {
				return fmt.Errorf("deleting nftables rule: %w", err)
			}
		}
		// A base chain of ours left empty still hooks every packet (an
		// empty nat chain keeps connection tracking on): it goes too.
		if st.chain && nat > 0 && nat == len(st.rules) {
			c.DelChain(nftChain(t))
		}
		if st.rpfChain && rpf > 0 && rpf == len(st.rpfRules) {
			c.DelChain(nftRPFChain(t))
		}
	}
	if err := c.Flush(); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return err // the batch failed whole: remove reads again
		}
		return fmt.Errorf("deleting nftables rules of family %s: %w", familyName(fam), err)
	}
	return nil
}

func (b *nftBackend) RemoveLink(link string) error {
	if err := ValidateLink(link); err != nil {
		return fmt.Errorf("removing firewall rules of link %q: %w", link, err)
	}
	match := func(_ string, r *nftables.Rule) bool {
		l, ok := linkOfComment(ruleComment(r.UserData))
		return ok && l == link
	}
	var errs []error
	for _, fam := range nftFamilies {
		errs = append(errs, b.remove(fam, match))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("removing firewall rules of link %q: %w", link, err)
	}
	return nil
}
