package pppssh

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
)

// PolicyPath is the server's policy file for the server half.
const PolicyPath = "/etc/vpn-pppssh/server.conf"

// Policy is what the server's admin lets clients ask for. Without a policy
// file everything a valid request can ask is allowed: the sudoers line that
// lets the account run the server half is the admin's trust in it.
type Policy struct {
	AllowNetworks   []netip.Prefix // CLIENT_NETWORKS must each lie inside one; nil: any
	AllowMasquerade bool
	AllowForwarding bool
	PPPD            string // the pppd the server half runs
	restricted      bool   // ALLOW_NETWORKS was given
}

// DefaultPolicy allows everything.
func DefaultPolicy() Policy {
	return Policy{AllowMasquerade: true, AllowForwarding: true, PPPD: Defaults().ServerPPPD}
}

// LoadPolicy reads the policy file; a missing file is the default policy.
func LoadPolicy(path string) (Policy, error) {
	p := DefaultPolicy()
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return p, nil
	}
	if err != nil {
		return p, fmt.Errorf("reading policy: %w", err)
	}
	defer f.Close()
	if err := checkOwnership(f, path); err != nil {
		return p, err
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(f); err != nil {
		return p, fmt.Errorf("reading policy: %w", err)
	}
	sc := bufio.NewScanner(&buf)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		m := assignRE.FindSubmatch(line)
		if m == nil {
			return p, &ConfigError{File: path, Line: n, Err: fmt.Errorf("not a KEY=VALUE line: %q", clip(string(line)))}
		}
		key := string(m[1])
		v, err := unquote(string(m[2]))
		if err == nil {
			switch key {
			case "ALLOW_NETWORKS":
				err = setNetworks(&p.AllowNetworks, v)
				p.restricted = true
			case "ALLOW_MASQUERADE":
				err = setBool(&p.AllowMasquerade, v)
			case "ALLOW_FORWARDING":
				err = setBool(&p.AllowForwarding, v)
			case "PPPD":
				err = setPath(&p.PPPD, v, false)
			default:
				err = errors.New("unknown key (ALLOW_NETWORKS, ALLOW_MASQUERADE, ALLOW_FORWARDING, PPPD)")
			}
		}
		if err != nil {
			return p, &ConfigError{File: path, Line: n, Key: key, Err: err}
		}
	}
	return p, sc.Err()
}

// Check refuses a request outside the policy, saying which part and why.
func (p Policy) Check(r Request) error {
	if r.Masquerade && !p.AllowMasquerade {
		return fmt.Errorf("masquerade is not allowed by %s (ALLOW_MASQUERADE=no)", PolicyPath)
	}
	if (r.Forward || len(r.Routes) > 0) && !p.AllowForwarding {
		return fmt.Errorf("forwarding is not allowed by %s (ALLOW_FORWARDING=no)", PolicyPath)
	}
	if p.restricted {
		for _, n := range r.Routes {
			if !inside(n, p.AllowNetworks) {
				return fmt.Errorf("routing %s is not allowed by %s (ALLOW_NETWORKS=%s)", n, PolicyPath, networksString(p.AllowNetworks))
			}
		}
	}
	return nil
}

func inside(n netip.Prefix, allowed []netip.Prefix) bool {
	for _, a := range allowed {
		if a.Bits() <= n.Bits() && a.Contains(n.Addr()) {
			return true
		}
	}
	return false
}
