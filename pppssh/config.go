package pppssh

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Config is one link's configuration. The zero value is not useful: start
// from Defaults and apply a file and flags with Set.
type Config struct {
	Name string // names the link: state files, pppd's linkname

	ServerHostname string // host name, address or ~/.ssh/config Host alias
	ServerUsername string
	ServerPort     int
	ServerIfAddr   netip.Addr // server's end of the PPP link
	ClientIfAddr   netip.Addr // this host's end of the PPP link
	SSHIdentity    string     // private key file; empty: agent, then ~/.ssh/id_*
	SSHKnownHosts  string     // known_hosts file; empty: ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts
	PPPD           string     // local pppd
	ServerPPPD     string     // pppd on the server, run through sudo -n
	IPParam        string     // pppd's ipparam on both ends
	ConnectTimeout time.Duration

	// explicit records the keys set by a file or a flag, so that values from
	// ~/.ssh/config only fill what the user left unset.
	explicit map[string]bool
}

// Defaults returns the configuration every file and flag starts from.
func Defaults() Config {
	return Config{
		Name:           "vpn",
		ServerPort:     22,
		PPPD:           "/usr/sbin/pppd",
		ServerPPPD:     "/usr/sbin/pppd",
		IPParam:        "vpn",
		ConnectTimeout: 30 * time.Second,
	}
}

// A Key is one configuration setting, spelled KEY in files and --key in flags.
type Key struct {
	Name  string // as in the file, e.g. SERVER_HOSTNAME
	Usage string
	set   func(c *Config, v string) error
	get   func(c *Config) string
}

// Flag is the command-line spelling of the key: SERVER_HOSTNAME becomes
// server-hostname.
func (k Key) Flag() string { return strings.ToLower(strings.ReplaceAll(k.Name, "_", "-")) }

// Keys lists every setting, in the order `config` prints them.
var Keys = []Key{
	{"SERVER_HOSTNAME", "SSH server: host name, address or a Host alias from ~/.ssh/config",
		func(c *Config, v string) error { return setHost(&c.ServerHostname, v) },
		func(c *Config) string { return c.ServerHostname }},
	{"SERVER_USERNAME", "account on the server that may run pppd through sudo",
		func(c *Config, v string) error { return setUser(&c.ServerUsername, v) },
		func(c *Config) string { return c.ServerUsername }},
	{"SERVER_PORT", "SSH port on the server",
		func(c *Config, v string) error { return setPort(&c.ServerPort, v) },
		func(c *Config) string { return strconv.Itoa(c.ServerPort) }},
	{"SERVER_IFIPADDR", "IPv4 address of the server's end of the PPP link",
		func(c *Config, v string) error { return setAddr(&c.ServerIfAddr, v) },
		func(c *Config) string { return addrString(c.ServerIfAddr) }},
	{"CLIENT_IFIPADDR", "IPv4 address of this host's end of the PPP link",
		func(c *Config, v string) error { return setAddr(&c.ClientIfAddr, v) },
		func(c *Config) string { return addrString(c.ClientIfAddr) }},
	{"SSH_IDENTITY", "private key file (default: ssh-agent, then ~/.ssh/id_*)",
		func(c *Config, v string) error { return setPath(&c.SSHIdentity, v, true) },
		func(c *Config) string { return c.SSHIdentity }},
	{"SSH_KNOWN_HOSTS", "known_hosts file (default: ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts)",
		func(c *Config, v string) error { return setPath(&c.SSHKnownHosts, v, true) },
		func(c *Config) string { return c.SSHKnownHosts }},
	{"PPPD", "local pppd program",
		func(c *Config, v string) error { return setPath(&c.PPPD, v, false) },
		func(c *Config) string { return c.PPPD }},
	{"SERVER_PPPD", "pppd program on the server, run as sudo -n SERVER_PPPD",
		func(c *Config, v string) error { return setPath(&c.ServerPPPD, v, false) },
		func(c *Config) string { return c.ServerPPPD }},
	{"IPPARAM", "pppd ipparam on both ends; ip-up scripts see it as $6",
		func(c *Config, v string) error { return setWord(&c.IPParam, v) },
		func(c *Config) string { return c.IPParam }},
	{"CONNECT_TIMEOUT", "seconds allowed for dialling, login and PPP negotiation",
		func(c *Config, v string) error { return setSeconds(&c.ConnectTimeout, v) },
		func(c *Config) string { return strconv.Itoa(int(c.ConnectTimeout / time.Second)) }},
}

// legacyKeys are accepted from a HOWTO script's settings block and ignored.
var legacyKeys = map[string]string{
	"LOCAL_SSH_OPTS": "ssh options do not apply: the SSH client is built in (it always uses an unprivileged source port)",
}

// KeyByName returns the key spelled name in a file.
func KeyByName(name string) (Key, bool) {
	for _, k := range Keys {
		if k.Name == name {
			return k, true
		}
	}
	return Key{}, false
}

// Set assigns one key from its text form and remembers that it was given.
func (c *Config) Set(name, value string) error {
	k, ok := KeyByName(name)
	if !ok {
		return fmt.Errorf("unknown key %s", name)
	}
	if err := k.set(c, value); err != nil {
		return err
	}
	if c.explicit == nil {
		c.explicit = map[string]bool{}
	}
	c.explicit[name] = true
	return nil
}

// Get returns one key's effective value in its text form.
func (c *Config) Get(name string) string {
	k, ok := KeyByName(name)
	if !ok {
		return ""
	}
	return k.get(c)
}

// Explicit reports whether a file or flag set the key.
func (c *Config) Explicit(name string) bool { return c.explicit[name] }

// Validate checks what single keys cannot: required keys and their relations.
func (c *Config) Validate() error {
	if !validName(c.Name) {
		return fmt.Errorf("link name %q: use 1-32 letters, digits, '.', '_' or '-', starting with a letter or digit", c.Name)
	}
	var missing []string
	for _, k := range []string{"SERVER_HOSTNAME", "SERVER_IFIPADDR", "CLIENT_IFIPADDR"} {
		if c.Get(k) == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing required key %s", strings.Join(missing, ", "))
	}
	if c.ServerIfAddr == c.ClientIfAddr {
		return fmt.Errorf("SERVER_IFIPADDR and CLIENT_IFIPADDR are both %s: the two ends need different addresses", c.ServerIfAddr)
	}
	return nil
}

// chars reports whether s has 1 to max characters, each an ASCII letter, a
// digit or one of extra, and does not start with '-' (which a program would
// take for an option). Plain loops rather than regular expressions: bounded
// repetitions compile to large automata, and this runs at every start.
func chars(s string, max int, extra string) bool {
	if s == "" || len(s) > max || s[0] == '-' {
		return false
	}
	for _, r := range s {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune(extra, r)) {
			return false
		}
	}
	return true
}

func alnum(b byte) bool { return chars(string(b), 1, "") }

func validName(s string) bool { return chars(s, 32, "._-") && alnum(s[0]) }
func validHost(s string) bool { return chars(s, 253, "._:-") }
func validUser(s string) bool { return chars(s, 32, "._-") }
func validWord(s string) bool { return chars(s, 64, "._-") }
func validPath(s string) bool { return chars(s, 1000, "/._+@-") && s[0] == '/' }

// ErrEmpty is returned for a key given an empty value where one is needed.
var ErrEmpty = errors.New("empty value")

func setHost(dst *string, v string) error {
	if !validHost(v) {
		return fmt.Errorf("%q is not a host name, address or alias", v)
	}
	*dst = v
	return nil
}

func setUser(dst *string, v string) error {
	if !validUser(v) {
		return fmt.Errorf("%q is not a user name (letters, digits, '.', '_', '-')", v)
	}
	*dst = v
	return nil
}

func setWord(dst *string, v string) error {
	if !validWord(v) {
		return fmt.Errorf("%q: use 1-64 letters, digits, '.', '_' or '-'", v)
	}
	*dst = v
	return nil
}

func setPort(dst *int, v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q is not a port number (1-65535)", v)
	}
	*dst = n
	return nil
}

func setSeconds(dst *time.Duration, v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 3600 {
		return fmt.Errorf("%q is not a number of seconds (1-3600)", v)
	}
	*dst = time.Duration(n) * time.Second
	return nil
}

func setAddr(dst *netip.Addr, v string) error {
	a, err := netip.ParseAddr(v)
	if err != nil || !a.Is4() {
		return fmt.Errorf("%q is not an IPv4 address", v)
	}
	if a.IsUnspecified() || a.IsLoopback() || a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return fmt.Errorf("%s cannot be the address of a PPP interface", a)
	}
	*dst = a
	return nil
}

// setPath accepts an absolute path of ordinary characters; optional paths may
// be emptied to mean "the default".
func setPath(dst *string, v string, optional bool) error {
	if v == "" && optional {
		*dst = ""
		return nil
	}
	if v == "" {
		return ErrEmpty
	}
	if !validPath(v) || strings.Contains(v, "/../") || strings.HasSuffix(v, "/..") {
		return fmt.Errorf("%q is not an absolute path of letters, digits and ._+@-/", v)
	}
	*dst = v
	return nil
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
