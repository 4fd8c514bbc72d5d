package pppssh

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	sshconfig "github.com/kevinburke/ssh_config"
	"github.com/vpn-pppssh/vpn-pppssh/internal/rootfile"
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
	Ciphers    []string // Ciphers; nil: preferredCiphers

	// Jumps are the hosts to go through, first hop first (ProxyJump,
	// SSH_PROXY_JUMP); each resolved through ssh_config like the server.
	Jumps []Target
	// ProxyCommand connects instead of TCP (ProxyCommand,
	// SSH_PROXY_COMMAND), with %h, %p, %r and %n expanded.
	ProxyCommand string
}

// ciphers is the list offered to the server.
func (t Target) ciphers() []string {
	if t.Ciphers != nil {
		return t.Ciphers
	}
	return preferredCiphers
}

// describe is user@host:port, and the way there: "vpn@203.0.113.2:22
// through jump@192.0.2.2:22", or "... through a proxy command".
func (t Target) describe() string {
	s := t.User + "@" + t.Addr()
	var hops []string
	for _, j := range t.Jumps {
		hops = append(hops, j.User+"@"+j.Addr())
	}
	switch {
	case len(hops) > 0:
		s += " through " + strings.Join(hops, ", ")
	case t.ProxyCommand != "":
		s += " through a proxy command"
	}
	return s
}

// FirstAddr is the host:port this host connects to itself: the first jump
// host's, else the server's; "" through a proxy command.
func (t Target) FirstAddr() string {
	switch {
	case t.ProxyCommand != "":
		return ""
	case len(t.Jumps) > 0:
		return t.Jumps[0].Addr()
	}
	return t.Addr()
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
	lookupFor := func(alias, key string) (string, string, error) {
		for i, cfg := range cfgs {
			v, err := cfg.Get(alias, key)
			if err != nil {
				return "", "", fmt.Errorf("%s: %w", sshConfigFiles(home)[i], err)
			}
			if v != "" {
				return v, sshConfigFiles(home)[i], nil
			}
		}
		return "", "", nil
	}
	lookup := func(key string) (string, string, error) { return lookupFor(c.ServerHostname, key) }
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
	if v, file, err := lookup("Ciphers"); err != nil {
		return t, err
	} else if v != "" {
		if t.Ciphers, err = parseCiphers(v); err != nil {
			return t, fmt.Errorf("%s: Ciphers for %s: %w", file, c.ServerHostname, err)
		}
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
	if err := c.resolveProxy(&t, lookup, func(h hopSpec) (Target, error) { return resolveHop(h, lookupFor, cfgs, home) }); err != nil {
		return t, err
	}
	return t, nil
}

// resolveProxy fills the target's Jumps or ProxyCommand: the link's keys
// win over ssh_config's, and "none" in a key turns ssh_config's off. Both
// at once is refused, rather than one silently winning.
func (c *Config) resolveProxy(t *Target, lookup func(string) (string, string, error), hop func(hopSpec) (Target, error)) error {
	jump, jumpFrom := c.SSHProxyJump, "SSH_PROXY_JUMP"
	if !c.Explicit("SSH_PROXY_JUMP") {
		v, file, err := lookup("ProxyJump")
		if err != nil {
			return err
		}
		jump, jumpFrom = v, file+": ProxyJump"
	}
	command, commandFrom := c.SSHProxyCommand, "SSH_PROXY_COMMAND"
	if !c.Explicit("SSH_PROXY_COMMAND") {
		v, file, err := lookup("ProxyCommand")
		if err != nil {
			return err
		}
		command, commandFrom = v, file+": ProxyCommand"
	}
	if strings.EqualFold(strings.TrimSpace(command), "none") {
		command = ""
	}
	hops, err := parseProxyJump(jump)
	if err != nil {
		return fmt.Errorf("%s for %s: %w", jumpFrom, c.ServerHostname, err)
	}
	if len(hops) > 0 && command != "" {
		// The link's own key wins over ssh_config, as ssh's -J over a
		// ProxyCommand of a Host block; two at the same level are
		// refused rather than one silently winning.
		switch jumpKey, commandKey := c.Explicit("SSH_PROXY_JUMP"), c.Explicit("SSH_PROXY_COMMAND"); {
		case jumpKey && !commandKey:
			command = ""
		case commandKey && !jumpKey:
			hops = nil
		default:
			return fmt.Errorf("both %s (%s) and %s are set for %s: use one", jumpFrom, jump, commandFrom, c.ServerHostname)
		}
	}
	if command != "" && c.DefaultRoute {
		// DEFAULT_ROUTE keeps the path to the first host out of the
		// tunnel; where a command connects is unknown here.
		return fmt.Errorf("DEFAULT_ROUTE=yes cannot be used with %s for %s: where the command connects is unknown, so its path cannot be kept out of the tunnel (SSH_PROXY_JUMP can: its first host's route is kept)", commandFrom, c.ServerHostname)
	}
	if command != "" {
		if err := setProxyCommand(&t.ProxyCommand, command); err != nil {
			return fmt.Errorf("%s for %s: %w", commandFrom, c.ServerHostname, err)
		}
	}
	for _, h := range hops {
		ht, err := hop(h)
		if err != nil {
			return fmt.Errorf("%s for %s: %w", jumpFrom, c.ServerHostname, err)
		}
		t.Jumps = append(t.Jumps, ht)
	}
	return nil
}

// resolveHop is a jump host with what ssh_config says for it: HostName,
// Port, User and IdentityFile, as for the server. A hop's own ProxyJump is
// not followed: the chain is the one list.
func resolveHop(h hopSpec, lookupFor func(alias, key string) (string, string, error), cfgs []*sshconfig.Config, home string) (Target, error) {
	t := Target{Alias: h.host, Host: h.host, Port: h.port, User: h.user}
	if v, _, err := lookupFor(h.host, "HostName"); err != nil {
		return t, err
	} else if v != "" {
		t.Host = strings.ReplaceAll(v, "%h", h.host)
	}
	if err := setHost(&t.Host, t.Host); err != nil {
		return t, fmt.Errorf("jump host %s: HostName: %w", h, err)
	}
	if t.Port == 0 {
		t.Port = 22
		if v, file, err := lookupFor(h.host, "Port"); err != nil {
			return t, err
		} else if v != "" {
			if err := setPort(&t.Port, v); err != nil {
				return t, fmt.Errorf("%s: Port for %s: %w", file, h.host, err)
			}
		}
	}
	if t.User == "" {
		if v, file, err := lookupFor(h.host, "User"); err != nil {
			return t, err
		} else if v != "" {
			if err := setUser(&t.User, v); err != nil {
				return t, fmt.Errorf("%s: User for %s: %w", file, h.host, err)
			}
		}
	}
	if t.User == "" {
		t.User = localUser()
	}
	for _, cfg := range cfgs {
		ids, err := cfg.GetAll(h.host, "IdentityFile")
		if err != nil {
			return t, err
		}
		for _, id := range ids {
			t.Identities = append(t.Identities, expandHome(id, home))
		}
	}
	t.Explicit = len(t.Identities) > 0
	return t, nil
}

// decodeSSHConfig reads an ssh_config file, or returns nil when there is
// none. As root, the file, the files it includes and the directories above
// them must be root's alone (rootfile.CheckPath): they choose the server,
// the account and the key root logs in with.
func decodeSSHConfig(path string) (*sshconfig.Config, error) {
	data, err := readSSHConfig(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if err := checkIncludes(path, data, false, 0); err != nil {
		return nil, err
	}
	cfg, err := sshconfig.DecodeBytes(data)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", path, err)
	}
	return cfg, nil
}

// maxSSHConfigSize bounds what is read from one ssh_config file.
const maxSSHConfigSize = 1 << 20

func readSSHConfig(path string) ([]byte, error) {
	if err := rootfile.CheckPath(path); errors.Is(err, fs.ErrNotExist) {
		return nil, err
	} else if err != nil {
		return nil, fmt.Errorf("refusing ssh_config %s: %w", path, err)
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSSHConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(data) > maxSSHConfigSize {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxSSHConfigSize)
	}
	return data, nil
}

// maxIncludeDepth is the ssh_config library's own limit.
const maxIncludeDepth = 5

// checkIncludes applies readSSHConfig's check to every file that an Include
// line of data names, the way github.com/kevinburke/ssh_config finds them
// (it reads them itself, by path): absolute, or under /etc/ssh for a file
// there that it found through an Include, or else under the home directory
// of the password database. A file of the system's that includes others is
// read by that library as a user file: the same rule is used here.
func checkIncludes(from string, data []byte, system bool, depth int) error {
	if depth > maxIncludeDepth {
		return fmt.Errorf("%s: Include nested more than %d deep", from, maxIncludeDepth)
	}
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == '\t' || r == '=' || r == '\r' })
		if len(fields) < 2 || !strings.EqualFold(fields[0], "include") {
			continue
		}
		for _, d := range includeWords(line, fields[1:]) {
			if strings.HasPrefix(d, "#") {
				break
			}
			var pattern string
			switch {
			case filepath.IsAbs(d):
				pattern = d
			case system:
				pattern = filepath.Join("/etc/ssh", d)
			case strings.HasPrefix(d, "~/"):
				pattern = filepath.Join(HomeDir(), d[2:])
			default:
				pattern = filepath.Join(HomeDir(), ".ssh", d)
			}
			matches, err := filepath.Glob(pattern)
			if err != nil {
				return fmt.Errorf("%s: Include %s: %w", from, d, err)
			}
			for _, m := range matches {
				data, err := readSSHConfig(m)
				if err != nil {
					return fmt.Errorf("%s: Include: %w", from, err)
				}
				isSystem := strings.HasPrefix(filepath.Clean(m), "/etc/ssh")
				if err := checkIncludes(m, data, isSystem, depth+1); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// includeWords are the file names an Include line may mean: split at
// white space and '=', and also as the ssh_config library splits its value
// (at single spaces only, so "a<TAB>b" is one name there). Checking both
// readings leaves no file the library reads unchecked.
func includeWords(line string, fields []string) []string {
	rest := strings.TrimLeft(line, " \t")
	rest = strings.TrimLeft(rest[len("include"):], " \t=")
	words := append([]string(nil), fields...)
	for _, w := range strings.Split(strings.TrimRight(rest, " \r"), " ") {
		if w != "" && !slices.Contains(words, w) {
			words = append(words, w)
		}
	}
	return words
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
