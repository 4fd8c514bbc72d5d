package pppssh

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Resolved is what `config` shows beyond the keys: where start would log
// in, with which keys, and whether known_hosts has each host it would
// check. Nothing is dialled.
type Resolved struct {
	Server     string   // user@host:port and the way there
	Identities []string // the key files that would be offered, and the agent
	KnownHosts []string // the files searched
	Hosts      []string // one line per host: its address and the key types on record, or that there are none
	Ciphers    []string
}

// Resolve reads what start reads (ssh_config, known_hosts, which key
// files exist) and says what it found; an error is one start would fail
// with too.
func (c *Config) Resolve(home string) (Resolved, error) {
	var r Resolved
	t, err := c.ResolveTarget(home)
	if err != nil {
		return r, err
	}
	r.Server, r.Ciphers = t.describe(), t.ciphers()
	r.Identities = offeredKeys(t, home)
	hk, err := loadHostKeys(c.SSHKnownHosts, home)
	if err != nil {
		return r, err
	}
	r.KnownHosts = hk.files
	for _, h := range append(append([]Target(nil), t.Jumps...), t) {
		what := "the server " + h.Addr()
		if h.Addr() != t.Addr() || h.User != t.User {
			what = "jump host " + h.Addr()
			if h.Alias != h.Host {
				what = "jump host " + h.Alias + " (" + h.Addr() + ")"
			}
		}
		if algos := hk.algorithms(h.Addr()); len(algos) > 0 {
			r.Hosts = append(r.Hosts, fmt.Sprintf("%s: known (%s)", what, strings.Join(algos, ", ")))
		} else {
			r.Hosts = append(r.Hosts, what+": NOT in known_hosts: start will refuse it (HOWTO section 5, step 3)")
		}
	}
	return r, nil
}

// offeredKeys says which keys signers would offer, without reading them.
func offeredKeys(t Target, home string) []string {
	if t.Explicit {
		return append([]string(nil), t.Identities...)
	}
	var out []string
	if os.Getenv("SSH_AUTH_SOCK") != "" {
		out = append(out, "ssh-agent ($SSH_AUTH_SOCK)")
	}
	for _, name := range defaultIdentities {
		p := filepath.Join(home, ".ssh", name)
		if _, err := os.Stat(p); err == nil {
			out = append(out, p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			out = append(out, p+" ("+err.Error()+")")
		}
	}
	if len(out) == 0 {
		out = append(out, "none: start will fail (set SSH_IDENTITY)")
	}
	return out
}
