//go:build linux

package firewall

import (
	"errors"
	"fmt"
	"net"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The masquerade rules of the nftables backend: IPv4 ones in our ip table,
// IPv6 ones in our ip6 table, both in a nat chain named NFTChain.

// masqFamily is the table family of m's rule.
func masqFamily(m Masquerade) nftables.TableFamily {
	if m.Source.Addr().Is4() {
		return nftables.TableFamilyIPv4
	}
	return nftables.TableFamilyIPv6
}

// Offsets of the source address in the IPv4 and IPv6 headers.
const (
	ipv4SaddrOffset = 12
	ipv6SaddrOffset = 8
)

// nftExprs builds `ip saddr <Source> [oifname != "<NotOut>"] masquerade`,
// or with ip6 for an IPv6 source, as nft encodes them.
func nftExprs(m Masquerade) []expr.Any {
	var e []expr.Any
	if bits := m.Source.Bits(); bits > 0 {
		addr := m.Source.Addr().AsSlice()
		size := len(addr)
		off := uint32(ipv4SaddrOffset)
		if size == net.IPv6len {
			off = ipv6SaddrOffset
		}
		n := size
		if bits%8 == 0 {
			n = bits / 8 // compare the whole bytes only, as nft does
		}
		e = append(e, &expr.Payload{
			OperationType: expr.PayloadLoad,
			DestRegister:  1,
			Base:          expr.PayloadBaseNetworkHeader,
			Offset:        off,
			Len:           uint32(n),
		})
		if bits%8 != 0 {
			e = append(e, &expr.Bitwise{
				SourceRegister: 1,
				DestRegister:   1,
				Len:            uint32(size),
				Mask:           net.CIDRMask(bits, 8*size),
				Xor:            make([]byte, size),
			})
		}
		e = append(e, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addr[:n]})
	}
	if m.NotOut != "" {
		e = append(e,
			&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: ifnameData(m.NotOut)},
		)
	}
	return append(e, &expr.Masq{})
}

// ifnameData is name as the kernel compares interface names: IFNAMSIZ
// bytes, NUL padded.
func ifnameData(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
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
	fam := masqFamily(m)
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
	for _, r := range st.rules {
		if got, ok := parseComment(ruleComment(r.UserData)); ok && got == m {
			return nil
		}
	}
	t := c.AddTable(nftTable(fam))
	ch := c.AddChain(nftChain(t))
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: nftExprs(m), UserData: commentUserData(commentFor(m))})
	if err := c.Flush(); err != nil {
		if !st.chain && fam == nftables.TableFamilyIPv6 && !st.table {
			// Was it the chain? Try it alone, as check does for ip.
			if natErr := tryNATChain(c, fam); natErr != nil {
				return fmt.Errorf("the kernel has no nftables nat for IPv6 (nft_chain_nat, nf_nat with CONFIG_NF_NAT_IPV6): %w", errors.Join(err, natErr))
			}
		}
		return fmt.Errorf("installing nftables rule: %w", err)
	}
	return nil
}

func (b *nftBackend) Remove(m Masquerade) error {
	if err := m.Validate(); err != nil {
		return fmt.Errorf("removing masquerade for %s: %w", m.Source, err)
	}
	err := b.remove(masqFamily(m), func(chain string, r *nftables.Rule) bool {
		got, ok := parseComment(ruleComment(r.UserData))
		return chain == NFTChain && ok && got == m
	})
	if err != nil {
		return fmt.Errorf("removing masquerade for %s: %w", m.Source, err)
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
	var out []Masquerade
	for _, fam := range nftFamilies {
		st, err := b.read(c, fam)
		if err != nil {
			return nil, fmt.Errorf("listing masquerades: %w", err)
		}
		for _, r := range st.rules {
			m, ok := parseComment(ruleComment(r.UserData))
			if ok && (link == "" || m.Link == link) {
				out = append(out, m)
			}
		}
	}
	return out, nil
}
