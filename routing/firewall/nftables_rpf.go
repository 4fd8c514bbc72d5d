//go:build linux

package firewall

import (
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// The source checks of the nftables backend, in the ip6 table's chain
// NFTRPFChain (filter, prerouting hook, priority raw):
//
//	iifname "<Iface>" fib saddr . iif oif 0 drop (nft also writes it "oif missing")
//
// fib looks the source address up as a destination, restricted to the
// interface the packet came in on; "missing" is no route back through it.

// rpfExprs builds the source check rule for s as nft encodes it.
func rpfExprs(s SourceCheck) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifnameData(s.Iface)},
		// The route back's output interface, 0 when there is none (no
		// NFTA_FIB_F_PRESENT: kernels before 5.3 refuse that flag, and
		// the index says the same).
		&expr.Fib{Register: 1, FlagSADDR: true, FlagIIF: true, ResultOIF: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0, 0, 0, 0}},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}
}

func (b *nftBackend) AddSourceCheck(s SourceCheck) error {
	if err := b.addSourceCheck(s); err != nil {
		return errSourceCheck("adding", s, err)
	}
	return nil
}

func (b *nftBackend) addSourceCheck(s SourceCheck) error {
	if err := s.Validate(); err != nil {
		return err
	}
	fam := nftables.TableFamilyIPv6
	b.mu.Lock()
	defer b.mu.Unlock()
	c, err := b.conn()
	if err != nil {
		return err
	}
	st, err := b.read(c, fam)
	if err != nil {
		return err
	}
	for _, r := range st.rpfRules {
		if got, ok := parseSourceCheckComment(ruleComment(r.UserData)); ok && got == s {
			return nil
		}
	}
	t := c.AddTable(nftTable(fam))
	ch := c.AddChain(nftRPFChain(t))
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: rpfExprs(s), UserData: commentUserData(sourceCheckComment(s))})
	if err := c.Flush(); err != nil {
		return fmt.Errorf("installing nftables rule (needs ip6 filter chains and nft_fib_ipv6): %w", err)
	}
	return nil
}

func (b *nftBackend) RemoveSourceCheck(s SourceCheck) error {
	if err := s.Validate(); err != nil {
		return errSourceCheck("removing", s, err)
	}
	err := b.remove(nftables.TableFamilyIPv6, func(chain string, r *nftables.Rule) bool {
		got, ok := parseSourceCheckComment(ruleComment(r.UserData))
		return chain == NFTRPFChain && ok && got == s
	})
	if err != nil {
		return errSourceCheck("removing", s, err)
	}
	return nil
}

func (b *nftBackend) SourceChecks(link string) ([]SourceCheck, error) {
	if link != "" {
		if err := ValidateLink(link); err != nil {
			return nil, fmt.Errorf("listing source checks: %w", err)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	c, err := b.conn()
	if err != nil {
		return nil, fmt.Errorf("listing source checks: %w", err)
	}
	st, err := b.read(c, nftables.TableFamilyIPv6)
	if err != nil {
		return nil, fmt.Errorf("listing source checks: %w", err)
	}
	var out []SourceCheck
	for _, r := range st.rpfRules {
		s, ok := parseSourceCheckComment(ruleComment(r.UserData))
		if ok && (link == "" || s.Link == link) {
			out = append(out, s)
		}
	}
	return out, nil
}
