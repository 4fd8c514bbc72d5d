package pppssh

import (
	"fmt"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
)

// preferredCiphers puts the AEAD ciphers with hardware support first; the
// tunnel's throughput is bounded by the cipher on one core. ssh_config's
// Ciphers changes the list (parseCiphers).
var preferredCiphers = []string{
	"aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com",
	"aes128-ctr", "aes192-ctr", "aes256-ctr",
}

// parseCiphers reads a Ciphers value as ssh_config(5) does: a comma list
// replaces the default list, "+list" appends to it, "-list" removes from
// it (patterns with * and ? allowed) and "^list" puts in front of it.
// Every name must be a cipher x/crypto/ssh speaks; an unknown name is an
// error that names it, rather than a list that silently shrinks.
func parseCiphers(v string) ([]string, error) {
	known := ssh.SupportedAlgorithms().Ciphers
	mode := byte(0)
	if v != "" && strings.ContainsRune("+-^", rune(v[0])) {
		mode, v = v[0], v[1:]
	}
	var names []string
	for _, n := range strings.Split(v, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			return nil, fmt.Errorf("an empty cipher name in %q", v)
		}
		if mode != '-' && !slices.Contains(known, n) {
			return nil, fmt.Errorf("unknown cipher %q (this client speaks %s)", n, strings.Join(known, ","))
		}
		names = append(names, n)
	}
	var out []string
	switch mode {
	case 0:
		out = names
	case '+':
		out = append(slices.Clone(preferredCiphers), names...)
	case '^':
		out = append(names, preferredCiphers...)
	case '-':
		for _, c := range preferredCiphers {
			if !slices.ContainsFunc(names, func(p string) bool { return wildMatch(p, c) }) {
				out = append(out, c)
			}
		}
	}
	out = dedupe(out)
	if len(out) == 0 {
		return nil, fmt.Errorf("%q leaves no cipher", v)
	}
	return out, nil
}

// dedupe keeps the first of each name.
func dedupe(s []string) []string {
	var out []string
	for _, n := range s {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// wildMatch matches s against an ssh_config pattern: * is any run of
// characters, ? any one.
func wildMatch(pattern, s string) bool {
	if pattern == "" {
		return s == ""
	}
	switch pattern[0] {
	case '*':
		for i := 0; i <= len(s); i++ {
			if wildMatch(pattern[1:], s[i:]) {
				return true
			}
		}
		return false
	case '?':
		return s != "" && wildMatch(pattern[1:], s[1:])
	}
	return s != "" && s[0] == pattern[0] && wildMatch(pattern[1:], s[1:])
}
