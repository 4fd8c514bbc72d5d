//go:build linux

package firewall

import (
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Names of the nftables objects owned by vpn-pppssh.
const (
	NFTTable = "vpn-pppssh"
	NFTChain = "postrouting"
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
// behind.
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

func nftTable() *nftables.Table {
	return &nftables.Table{Name: NFTTable, Family: nftables.TableFamilyIPv4}
}

func nftChain(t *nftables.Table) *nftables.Chain {
	return &nftables.Chain{
		Name:     NFTChain,
		Table:    t,
		Type:     nftables.ChainTypeNAT,
		Hooknum:  nftables.ChainHookPostrouting,
		Priority: nftables.ChainPriorityNATSource,
	}
}

// check makes sure the kernel speaks nftables and accepts a nat chain on the
// postrouting hook of the ip family. When our table does not exist yet it is
// created with its chain and deleted again in one transaction.
func (b *nftBackend) check() error {
	c, err := b.conn()
	if err != nil {
		return err
	}
	st, err := b.read(c)
	if err != nil {
		return err
	}
	if st.table {
		return nil
	}
	t := nftTable()
	c.CreateTable(t) // exclusive: never deletes a table someone else just made
	c.AddChain(nftChain(t))
	c.DelTable(t)
	if err := c.Flush(); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return nil
		}
		return fmt.Errorf("trying a nat postrouting chain: %w", err)
	}
	return nil
}

// nftState is what is installed in our table.
type nftState struct {
	table       bool // our table exists
	chain       bool // our chain exists in it
	otherChains int  // chains in our table that are not ours
	rules       []*nftables.Rule
}

func (b *nftBackend) read(c *nftables.Conn) (nftState, error) {
	var st nftState
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return st, fmt.Errorf("listing nftables tables: %w", err)
	}
	for _, t := range tables {
		if t.Name == NFTTable {
			st.table = true
		}
	}
	if !st.table {
		return st, nil
	}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return st, fmt.Errorf("listing nftables chains: %w", err)
	}
	for _, ch := range chains {
		if ch.Table == nil || ch.Table.Name != NFTTable {
			continue
		}
		if ch.Name == NFTChain {
			st.chain = true
		} else {
			st.otherChains++
		}
	}
	if !st.chain {
		return st, nil
	}
	t := nftTable()
	st.rules, err = c.GetRules(t, nftChain(t))
	if err != nil {
		return st, fmt.Errorf("listing rules of %s %s: %w", NFTTable, NFTChain, err)
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

func nftUserData(m Masquerade) []byte {
	c := append([]byte(commentFor(m)), 0)
	return append([]byte{udataComment, byte(len(c))}, c...)
}

// nftExprs builds `ip saddr <Source> [oifname != "<NotOut>"] masquerade`.
func nftExprs(m Masquerade) []expr.Any {
	var e []expr.Any
	if bits := m.Source.Bits(); bits > 0 {
		addr := m.Source.Addr().As4()
		n := 4
		if bits%8 == 0 {
			n = bits / 8 // compare the whole bytes only, as nft does
		}
		e = append(e, &expr.Payload{
			OperationType: expr.PayloadLoad,
			DestRegister:  1,
			Base:          expr.PayloadBaseNetworkHeader,
			Offset:        12, // saddr
			Len:           uint32(n),
		})
		if bits%8 != 0 {
			e = append(e, &expr.Bitwise{
				SourceRegister: 1,
				DestRegister:   1,
				Len:            4,
				Mask:           net.CIDRMask(bits, 32),
				Xor:            make([]byte, 4),
			})
		}
		e = append(e, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addr[:n]})
	}
	if m.NotOut != "" {
		name := make([]byte, unix.IFNAMSIZ)
		copy(name, m.NotOut)
		e = append(e,
			&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: name},
		)
	}
	return append(e, &expr.Masq{})
}

func (b *nftBackend) Add(m Masquerade) error {
	if err := b.add(m); err != nil {
		return fmt.Errorf("adding masquerade for %s: %w", m.Source, err)
	}
	return nil
}

func (b *nftBackend) add(m Masquerade) error {
	if err := m.Validate(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	c, err := b.conn()
	if err != nil {
		return err
	}
	st, err := b.read(c)
	if err != nil {
		return err
	}
	for _, r := range st.rules {
		if got, ok := parseComment(ruleComment(r.UserData)); ok && got == m {
			return nil
		}
	}
	t := c.AddTable(nftTable())
	ch := c.AddChain(nftChain(t))
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: nftExprs(m), UserData: nftUserData(m)})
	if err := c.Flush(); err != nil {
		return fmt.Errorf("installing nftables rule: %w", err)
	}
	return nil
}

func (b *nftBackend) Remove(m Masquerade) error {
	if err := m.Validate(); err != nil {
		return fmt.Errorf("removing masquerade for %s: %w", m.Source, err)
	}
	err := b.remove(func(r *nftables.Rule) bool {
		got, ok := parseComment(ruleComment(r.UserData))
		return ok && got == m
	})
	if err != nil {
		return fmt.Errorf("removing masquerade for %s: %w", m.Source, err)
	}
	return nil
}

func (b *nftBackend) RemoveLink(link string) error {
	if err := ValidateLink(link); err != nil {
		return fmt.Errorf("removing masquerades of link %q: %w", link, err)
	}
	err := b.remove(func(r *nftables.Rule) bool {
		l, ok := linkOfComment(ruleComment(r.UserData))
		return ok && l == link
	})
	if err != nil {
		return fmt.Errorf("removing masquerades of link %q: %w", link, err)
	}
	return nil
}

// remove deletes the rules of our chain that match, and the whole table
// when nothing would be left in it.
func (b *nftBackend) remove(match func(*nftables.Rule) bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, err := b.conn()
	if err != nil {
		return err
	}
	st, err := b.read(c)
	if err != nil {
		return err
	}
	if !st.table {
		return nil
	}
	var doomed []*nftables.Rule
	for _, r := range st.rules {
		if match(r) {
			doomed = append(doomed, r)
		}
	}
	t := nftTable()
	switch {
	case len(doomed) == len(st.rules) && st.otherChains == 0:
		c.DelTable(t)
	case len(doomed) == 0:
		return nil
	default:
		ch := nftChain(t)
		for _, r := range doomed {
			if err := c.DelRule(&nftables.Rule{Table: t, Chain: ch, Handle: r.Handle}); err != nil {
				return fmt.Errorf("deleting nftables rule: %w", err)
			}
		}
	}
	if err := c.Flush(); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil // already gone: someone else removed it meanwhile
		}
		return fmt.Errorf("deleting nftables rules: %w", err)
	}
	return nil
}

func (b *nftBackend) Rules(link string) ([]Masquerade, error) {
	if link != "" {
		if err := ValidateLink(link); err != nil {
			return nil, fmt.Errorf("listing masquerades: %w", err)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	c, err := b.conn()
	if err != nil {
		return nil, fmt.Errorf("listing masquerades: %w", err)
	}
	st, err := b.read(c)
	if err != nil {
		return nil, fmt.Errorf("listing masquerades: %w", err)
	}
	var out []Masquerade
	for _, r := range st.rules {
		m, ok := parseComment(ruleComment(r.UserData))
		if ok && (link == "" || m.Link == link) {
			out = append(out, m)
		}
	}
	return out, nil
}
