//go:build linux && (amd64 || arm64 || riscv64 || loong64 || ppc64le || mips64le)

package firewall

import "fmt"

// The source checks of the legacy backend, in ip6tables' raw table:
//
//	-A PREROUTING -i <Iface> -m rpfilter --invert -m comment --comment "vpn-pppssh:<link> rpf=<Iface>" -j DROP
//
// or, without the comment match, in chain vpn-pppssh-<link> of the raw
// table, jumped to from PREROUTING (legacy_chain.go).

func (b *legacyBackend) AddSourceCheck(s SourceCheck) error {
	if err := s.Validate(); err != nil {
		return errSourceCheck("adding", s, err)
	}
	if err := b.need(raw6); err != nil {
		return errSourceCheck("adding", s, err)
	}
	change := appendRule(raw6.hook, sourceCheckEntry(s))
	if b.chains {
		change = addToChain(raw6.hook, chainName(s.Link), plainSourceCheckEntry(s))
	}
	if err := b.modify(raw6, change); err != nil {
		return errSourceCheck("adding", s, err)
	}
	return nil
}

func (b *legacyBackend) RemoveSourceCheck(s SourceCheck) error {
	if err := s.Validate(); err != nil {
		return errSourceCheck("removing", s, err)
	}
	if err := b.removeRule(raw6, chainName(s.Link), sourceCheckEntry(s), plainSourceCheckEntry(s)); err != nil {
		return errSourceCheck("removing", s, err)
	}
	return nil
}

func (b *legacyBackend) SourceChecks(link string) ([]SourceCheck, error) {
	if link != "" {
		if err := ValidateLink(link); err != nil {
			return nil, fmt.Errorf("listing source checks: %w", err)
		}
	}
	out, err := listRules(b, raw6, link, parseSourceCheckComment,
		func(s SourceCheck) string { return s.Link }, raw6.fam.chainSourceCheck)
	if err != nil {
		return nil, fmt.Errorf("listing source checks: %w", err)
	}
	return out, nil
}
