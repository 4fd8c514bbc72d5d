package pppssh

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	sshconfig "github.com/kevinburke/ssh_config"
)

// Target is where and as whom to log in, after ~/.ssh/config has filled in
// what the link's configuration left unset.
type Target struct {
	Alias      string   // SERVER_HOSTNAME as written
	Host       string   // HostName, or the alias itself
	Port       int      // SERVER_PORT, or Port, or 22
	User       string   // SERVER_USERNAME, or User
	Identities []string // SSH_IDENTITY, or IdentityFile entries
	Explicit   bool     // Identities came from the link's own SSH_IDENTITY
}

// Addr is host:port for dialling and for known_hosts.
func (t Target) Addr() string { return joinHostPort(t.Host, t.Port) }

func joinHostPort(h string, p int) string {
	if strings.Contains(h, ":") {
		return "[" + h + "]:" + strconv.Itoa(p)
	}
	return h + ":" + strconv.Itoa(p)
}

// sshConfigFiles are consulted in this order; the first value wins, as in ssh.
func sshConfigFiles(home string) []string {
	return []string{filepath.Join(home, ".ssh", "config"), "/etc/ssh/ssh_config"}
}

// ResolveTarget combines the link's keys with the user's and the system's
// ssh_config. Keys set in the link's configuration win, as command-line
// arguments do for ssh.
func (c *Config) ResolveTarget(home string) (Target, error) {
	t := Target{Alias: c.ServerHostname, Host: c.ServerHostname, Port: c.ServerPort, User: c.ServerUsername}
	if c.SSHIdentity != "" {
		t.Identities, t.Explicit = []string{c.SSHIdentity}, true
	}
	var cfgs []*sshconfig.Config
	for _, p := range sshConfigFiles(home) {
		cfg, err := decodeSSHConfig(p)
		if err != nil {
			return t, err
		}
		if cfg != nil {
			cfgs = append(cfgs, cfg)
		}
	}
	lookup := func(key string) (string, string, error) {
		for i, cfg := range cfgs {
			v, err := cfg.Get(c.ServerHostname, key)
			if err != nil {
				return "", "", fmt.Errorf("%s: %w", sshConfigFiles(home)[i], err)
			}
			if v != "" {
				return v, sshConfigFiles(home)[i], nil
			}
		}
		return "", "", nil
	}
	if v, _, err := lookup("HostName"); err != nil {
		return t, err
	} else if v != "" {
		t.Host = strings.ReplaceAll(v, "%h", c.ServerHostname)
	}
	if !c.Explicit("SERVER_PORT") {
		v, file, err := lookup("Port")
		if err != nil {
			return t, err
		}
		if v != "" {
			if err := setPort(&t.Port, v); err != nil {
				return t, fmt.Errorf("%s: Port for %s: %w", file, c.ServerHostname, err)
			}
		}
	}
	if t.User == "" {
		v, file, err := lookup("User")
		if err != nil {
			return t, err
		}
		if v != "" {
			if err := setUser(&t.User, v); err != nil {
				return t, fmt.Errorf("%s: User for %s: %w", file, c.ServerHostname, err)
			}
		}
	}
	if t.User == "" {
		return t, errors.New("missing required key SERVER_USERNAME (and no User for this host in ~/.ssh/config)")
	}
	if !t.Explicit {
		for _, cfg := range cfgs {
			ids, err := cfg.GetAll(c.ServerHostname, "IdentityFile")
			if err != nil {
				return t, err
			}
			for _, id := range ids {
				t.Identities = append(t.Identities, expandHome(id, home))
			}
		}
		if len(t.Identities) > 0 {
			t.Explicit = true
		}
	}
	if err := setHost(&t.Host, t.Host); err != nil {
		return t, fmt.Errorf("HostName for %s: %w", c.ServerHostname, err)
	}
	return t, nil
}

func decodeSSHConfig(path string) (*sshconfig.Config, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	defer f.Close()
	cfg, err := sshconfig.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", path, err)
	}
	return cfg, nil
}

func expandHome(p, home string) string {
	if p == "~" {
		return home
	}
	if strings.HasPrefix(p, "~/") {
		return filepath.Join(home, p[2:])
	}
	return p
}
