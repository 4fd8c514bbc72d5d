package pppssh

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vpn-pppssh/vpn-pppssh/dnsconf"
	"github.com/vpn-pppssh/vpn-pppssh/forward"
)

// Config is one link's configuration. The zero value is not useful: start
// from Defaults and apply a file and flags with Set.
type Config struct {
	Name string // names the link: state files, pppd's linkname

	ServerHostname string // host name, address or ~/.ssh/config Host alias
	ServerUsername string
	ServerPort     int
	ServerIfAddr   netip.Addr // server's end of the link
	ClientIfAddr   netip.Addr // this host's end of the link
	ServerIfBits   int        // ethernet mode: the prefix length given with SERVER_IFIPADDR; 0 none
	ClientIfBits   int        // ethernet mode: the prefix length given with CLIENT_IFIPADDR; 0 none
	// The link's IPv6 addresses (SERVER_IFIP6ADDR, CLIENT_IFIP6ADDR):
	// set, the link carries IPv6; the Bits as the IPv4 ones.
	ServerIf6Addr   netip.Addr
	ClientIf6Addr   netip.Addr
	ServerIf6Bits   int
	ClientIf6Bits   int
	SSHIdentity     string // private key file; empty: agent, then ~/.ssh/id_*
	SSHKnownHosts   string // known_hosts file; empty: ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts
	SSHProxyJump    string // jump hosts, as ssh's ProxyJump; "none": not ssh_config's either
	SSHProxyCommand string // connect through this command, as ssh's ProxyCommand
	PPPD            string // local pppd
	ServerPPPD      string // pppd on the server, run through sudo -n
	ServerPPPDCall  string // /etc/ppp/peers file on the server: sudo -n SERVER_PPPD call NAME
	IPParam         string // pppd's ipparam on both ends
	ConnectTimeout  time.Duration

	ServerNetworks   []netip.Prefix // behind the server: routed here through the link
	ClientNetworks   []netip.Prefix // behind this host: routed back on the server (needs ServerHelper)
	ServerMasquerade bool           // the server masquerades tunnel traffic (needs ServerHelper)
	ClientMasquerade bool           // this host masquerades tunnel traffic leaving its other interfaces
	DefaultRoute     bool           // everything through the link, the SSH server still the old way
	IPUpDir          string         // hooks run once the link and its routes are up
	IPDownDir        string         // hooks run before teardown, while the interface exists
	ServerHelper     string         // vpn-pppssh on the server, run as sudo -n SERVER_HELPER serve

	Mode          string // ModePPP, ModeTUN, ModeEthernet or ModeNone
	MTU           int    // tun and ethernet modes: the devices' MTU; 0: the kernel's (1500)
	ServerTunUnit int    // OpenSSH's forwarding: the server's device unit; -1: any free one
	ClientBridge  string // ethernet mode: the client's tap joins this bridge
	ServerBridge  string // ethernet mode: the server's tap joins this bridge
	Offload       bool   // tun and ethernet modes through the helper: TSO and checksum offload on both devices
	ServerPTY     bool   // MODE=ppp through the helper: the server's pppd speaks on a terminal of sshd's (terminal.go)

	DNSServers []netip.Addr // DNS: this host's name servers while the link is up
	DNSPeer    bool         // DNS=peer: the ones the server's pppd offers
	DNSSearch  []string     // DNS_SEARCH: search domains while the link is up

	// Port forwards on the link's SSH connection (OpenSSH's -L, -R, -D).
	LocalForwards   []forward.Spec
	RemoteForwards  []forward.Spec
	DynamicForwards []forward.Spec

	Keepalive  time.Duration // SSH keepalive and LCP echo interval
	Persist    bool          // redial a link that died
	RetryFirst bool          // redial a first dial that failed, instead of failing start
	HoldoffMax time.Duration // longest wait between redials
	MaxFail    int           // failed redials in a row before giving up; 0: never

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
		IPUpDir:        "/etc/vpn-pppssh/ip-up.d",
		IPDownDir:      "/etc/vpn-pppssh/ip-down.d",
		Keepalive:      10 * time.Second,
		Persist:        true,
		Offload:        true,
		ServerPTY:      true,
		HoldoffMax:     30 * time.Second,
		Mode:           ModePPP,
		ServerTunUnit:  -1,
	}
}

// The modes: how IP travels between the two ends.
const (
	ModePPP      = "ppp"      // pppd on a pty at each end
	ModeTUN      = "tun"      // a tun device at each end (layer 3)
	ModeEthernet = "ethernet" // a tap device at each end (layer 2)
	ModeNone     = "none"     // no tunnel: only the port forwards, kept up
)

// defaultEthernetBits is the prefix length of an ethernet-mode address
// given without one.
const defaultEthernetBits = 24

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
	{"MODE", "ppp (pppd at each end), tun (a tun device at each end, layer 3), ethernet (a tap device at each end, layer 2) or none (only the port forwards, kept up)",
		func(c *Config, v string) error { return setMode(&c.Mode, v) },
		func(c *Config) string { return c.Mode }},
	{"SERVER_IFIPADDR", "IPv4 address of the server's end of the link; in ethernet mode with a prefix length (203.0.113.1/24)",
		func(c *Config, v string) error { return setAddrBits(&c.ServerIfAddr, &c.ServerIfBits, v) },
		func(c *Config) string { return addrBitsString(c.ServerIfAddr, c.ServerIfBits) }},
	{"CLIENT_IFIPADDR", "IPv4 address of this host's end of the link; in ethernet mode with a prefix length (203.0.113.50/24)",
		func(c *Config, v string) error { return setAddrBits(&c.ClientIfAddr, &c.ClientIfBits, v) },
		func(c *Config) string { return addrBitsString(c.ClientIfAddr, c.ClientIfBits) }},
	{"SERVER_IFIP6ADDR", "IPv6 address of the server's end of the link: with CLIENT_IFIP6ADDR the link carries IPv6 too (MODE=ppp: needs SERVER_HELPER); in ethernet mode with a prefix length (2001:db8:6::1/64)",
		func(c *Config, v string) error { return setAddr6Bits(&c.ServerIf6Addr, &c.ServerIf6Bits, v) },
		func(c *Config) string { return addrBitsString(c.ServerIf6Addr, c.ServerIf6Bits) }},
	{"CLIENT_IFIP6ADDR", "IPv6 address of this host's end of the link; in ethernet mode with a prefix length (2001:db8:6::2/64)",
		func(c *Config, v string) error { return setAddr6Bits(&c.ClientIf6Addr, &c.ClientIf6Bits, v) },
		func(c *Config) string { return addrBitsString(c.ClientIf6Addr, c.ClientIf6Bits) }},
	{"MTU", "tun and ethernet modes: the devices' MTU (68-65000); empty: the kernel's 1500, or a bridge's",
		func(c *Config, v string) error { return setMTU(&c.MTU, v) },
		func(c *Config) string { return intString(c.MTU) }},
	{"SERVER_TUN_UNIT", "tun and ethernet modes over OpenSSH's forwarding: the server's tun/tap unit N, a device the admin created for the account; empty: any free unit (needs a root login)",
		func(c *Config, v string) error { return setUnit(&c.ServerTunUnit, v) },
		func(c *Config) string { return unitString(c.ServerTunUnit) }},
	{"CLIENT_BRIDGE", "ethernet mode: this host's tap joins this existing bridge",
		func(c *Config, v string) error { return setIfName(&c.ClientBridge, v) },
		func(c *Config) string { return c.ClientBridge }},
	{"SERVER_BRIDGE", "ethernet mode: the server's tap joins this existing bridge (then SERVER_IFIPADDR may be left out)",
		func(c *Config, v string) error { return setIfName(&c.ServerBridge, v) },
		func(c *Config) string { return c.ServerBridge }},
	{"OFFLOAD", "tun and ethernet modes through SERVER_HELPER: yes: both devices offload checksums and TCP segmentation, so TCP crosses in super-packets of up to 64 KiB; no: packets of the MTU",
		func(c *Config, v string) error { return setBool(&c.Offload, v) },
		func(c *Config) string { return boolString(c.Offload) }},
	{"SERVER_PTY", "MODE=ppp through SERVER_HELPER: yes: the server's pppd speaks PPP on a terminal sshd allocates for the link, with no relay process between them (falls back to no when sshd refuses the terminal); no: on the session's pipes through pppd's own relay (notty), for a server helper before 0.10.0, which does not know it",
		func(c *Config, v string) error { return setBool(&c.ServerPTY, v) },
		func(c *Config) string { return boolString(c.ServerPTY) }},
	{"SSH_IDENTITY", "private key file (default: ssh-agent, then ~/.ssh/id_*)",
		func(c *Config, v string) error { return setPath(&c.SSHIdentity, v, true) },
		func(c *Config) string { return c.SSHIdentity }},
	{"SSH_KNOWN_HOSTS", "known_hosts file (default: ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts)",
		func(c *Config, v string) error { return setPath(&c.SSHKnownHosts, v, true) },
		func(c *Config) string { return c.SSHKnownHosts }},
	{"SSH_PROXY_JUMP", "jump hosts to reach the server through, as ssh's ProxyJump: [user@]host[:port], comma separated, each host's key checked against known_hosts; none: not ssh_config's either (default: ProxyJump from ~/.ssh/config)",
		func(c *Config, v string) error { return setProxyJump(&c.SSHProxyJump, v) },
		func(c *Config) string { return c.SSHProxyJump }},
	{"SSH_PROXY_COMMAND", "connect through this command instead of TCP, as ssh's ProxyCommand (run by /bin/sh; %h, %p, %r, %n expanded); none: not ssh_config's either",
		func(c *Config, v string) error { return setProxyCommand(&c.SSHProxyCommand, v) },
		func(c *Config) string { return c.SSHProxyCommand }},
	{"PPPD", "local pppd program",
		func(c *Config, v string) error { return setPath(&c.PPPD, v, false) },
		func(c *Config) string { return c.PPPD }},
	{"SERVER_PPPD", "pppd program on the server, run as sudo -n SERVER_PPPD",
		func(c *Config, v string) error { return setPath(&c.ServerPPPD, v, false) },
		func(c *Config) string { return c.ServerPPPD }},
	{"SERVER_PPPD_CALL", "run sudo -n SERVER_PPPD call NAME: the server pppd's options come from the server's /etc/ppp/peers/NAME, and sudoers can pin those two words exactly",
		func(c *Config, v string) error { return setCallName(&c.ServerPPPDCall, v) },
		func(c *Config) string { return c.ServerPPPDCall }},
	{"IPPARAM", "pppd ipparam on both ends; ip-up scripts see it as $6",
		func(c *Config, v string) error { return setWord(&c.IPParam, v) },
		func(c *Config) string { return c.IPParam }},
	{"CONNECT_TIMEOUT", "seconds allowed for dialling, login and PPP negotiation",
		func(c *Config, v string) error { return setSeconds(&c.ConnectTimeout, v) },
		func(c *Config) string { return strconv.Itoa(int(c.ConnectTimeout / time.Second)) }},
	{"SERVER_NETWORKS", "networks behind the server (IPv4 or IPv6 CIDRs, comma or space separated), routed through the link; IPv6 ones need the link's IPv6 addresses",
		func(c *Config, v string) error { return setNetworks(&c.ServerNetworks, v) },
		func(c *Config) string { return networksString(c.ServerNetworks) }},
	{"CLIENT_NETWORKS", "networks behind this host, routed back by the server (needs SERVER_HELPER)",
		func(c *Config, v string) error { return setNetworks(&c.ClientNetworks, v) },
		func(c *Config) string { return networksString(c.ClientNetworks) }},
	{"SERVER_MASQUERADE", "yes: the server masquerades tunnel traffic leaving its other interfaces (needs SERVER_HELPER)",
		func(c *Config, v string) error { return setBool(&c.ServerMasquerade, v) },
		func(c *Config) string { return boolString(c.ServerMasquerade) }},
	{"CLIENT_MASQUERADE", "yes: this host masquerades tunnel traffic leaving its other interfaces",
		func(c *Config, v string) error { return setBool(&c.ClientMasquerade, v) },
		func(c *Config) string { return boolString(c.ClientMasquerade) }},
	{"DEFAULT_ROUTE", "yes: send everything through the link, IPv6 too when the link carries it (else IPv6 beyond this host's own links is refused while it is up); the SSH server stays on its current route",
		func(c *Config, v string) error { return setBool(&c.DefaultRoute, v) },
		func(c *Config) string { return boolString(c.DefaultRoute) }},
	{"IP_UP_DIR", "hooks run (run-parts rules) once the link and its routes are up",
		func(c *Config, v string) error { return setPath(&c.IPUpDir, v, true) },
		func(c *Config) string { return c.IPUpDir }},
	{"IP_DOWN_DIR", "hooks run before teardown, while the interface still exists",
		func(c *Config, v string) error { return setPath(&c.IPDownDir, v, true) },
		func(c *Config) string { return c.IPDownDir }},
	{"SERVER_HELPER", "vpn-pppssh on the server; run as sudo -n SERVER_HELPER serve instead of bare pppd",
		func(c *Config, v string) error { return setPath(&c.ServerHelper, v, true) },
		func(c *Config) string { return c.ServerHelper }},
	{"DNS", "name servers for this host while the link is up, reachable through it: addresses, or peer (those the server's pppd offers, MODE=ppp); set through systemd-resolved, resolvconf or /etc/resolv.conf, and undone at stop",
		func(c *Config, v string) error { return setDNS(c, v) },
		func(c *Config) string { return dnsString(c) }},
	{"DNS_SEARCH", "search domains while the link is up (with DNS), separated by spaces",
		func(c *Config, v string) error {
			d, err := dnsconf.ParseSearch(v)
			if err == nil {
				c.DNSSearch = d
			}
			return err
		},
		func(c *Config) string { return strings.Join(c.DNSSearch, " ") }},
	{"LOCAL_FORWARDS", "port forwards as ssh -L takes them, separated by spaces: [bind_address:]port:host:hostport, [bind_address:]port:socket, socket:host:hostport or socket:socket",
		func(c *Config, v string) error { return setForwards(&c.LocalForwards, forward.Local, v) },
		func(c *Config) string { return forwardsString(c.LocalForwards) }},
	{"REMOTE_FORWARDS", "port forwards as ssh -R takes them (the server listens, this host connects), separated by spaces",
		func(c *Config, v string) error { return setForwards(&c.RemoteForwards, forward.Remote, v) },
		func(c *Config) string { return forwardsString(c.RemoteForwards) }},
	{"DYNAMIC_FORWARDS", "SOCKS 4/5 proxies as ssh -D takes them, [bind_address:]port, separated by spaces",
		func(c *Config, v string) error { return setForwards(&c.DynamicForwards, forward.Dynamic, v) },
		func(c *Config) string { return forwardsString(c.DynamicForwards) }},
	{"KEEPALIVE", "seconds between SSH keepalives and LCP echo requests; a silent link is dead after about 3 of them",
		func(c *Config, v string) error { return setSeconds(&c.Keepalive, v) },
		func(c *Config) string { return strconv.Itoa(int(c.Keepalive / time.Second)) }},
	{"PERSIST", "yes: redial a link that died, with backoff, in the same background process",
		func(c *Config, v string) error { return setBool(&c.Persist, v) },
		func(c *Config) string { return boolString(c.Persist) }},
	{"RETRY_FIRST_DIAL", "yes: a first dial that fails is redialled as a dropped link is (backoff, MAXFAIL), and start returns at once saying so; for boot without systemd, when the network may not be up yet",
		func(c *Config, v string) error { return setBool(&c.RetryFirst, v) },
		func(c *Config) string { return boolString(c.RetryFirst) }},
	{"HOLDOFF_MAX", "longest wait between redials, in seconds (the wait doubles from 1 s)",
		func(c *Config, v string) error { return setSeconds(&c.HoldoffMax, v) },
		func(c *Config) string { return strconv.Itoa(int(c.HoldoffMax / time.Second)) }},
	{"MAXFAIL", "failed redials in a row before giving up with a non-zero exit; 0: never give up",
		func(c *Config, v string) error { return setCount(&c.MaxFail, v) },
		func(c *Config) string { return strconv.Itoa(c.MaxFail) }},
}

// legacyKeys are accepted from a HOWTO script's settings block and ignored.
var legacyKeys = map[string]string{
	"SSH": "no ssh program is run: the SSH client is built in",
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
	if err := c.validateMode(); err != nil {
		return err
	}
	if c.Mode == ModeNone {
		return c.validateNone()
	}
	var missing []string
	for _, k := range []string{"SERVER_HOSTNAME", "SERVER_IFIPADDR", "CLIENT_IFIPADDR"} {
		bridged := c.Mode == ModeEthernet && (k == "SERVER_IFIPADDR" && c.ServerBridge != "" || k == "CLIENT_IFIPADDR" && c.ClientBridge != "")
		if c.Get(k) == "" && !bridged {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing required key %s", strings.Join(missing, ", "))
	}
	if c.ServerHelper == "" {
		switch {
		case len(c.ClientNetworks) > 0:
			return errors.New("CLIENT_NETWORKS needs SERVER_HELPER: without the server half of vpn-pppssh nothing routes them back on the server")
		case c.ServerMasquerade:
			return errors.New("SERVER_MASQUERADE=yes needs SERVER_HELPER: without the server half of vpn-pppssh nothing masquerades on the server")
		}
	}
	if c.ServerPPPDCall != "" && c.ServerHelper != "" {
		return errors.New("SERVER_PPPD_CALL and SERVER_HELPER exclude each other: the server half runs pppd itself, with options of its own")
	}
	if len(c.DNSSearch) > 0 && len(c.DNSServers) == 0 && !c.DNSPeer {
		return errors.New("DNS_SEARCH needs DNS: search domains without the servers that know them")
	}
	if c.DNSPeer && c.Mode != ModePPP {
		return fmt.Errorf("DNS=peer applies to MODE=ppp (the server's pppd offers its name servers), not MODE=%s: give the addresses", c.Mode)
	}
	if c.ServerIfAddr.IsValid() && c.ServerIfAddr == c.ClientIfAddr {
		return fmt.Errorf("SERVER_IFIPADDR and CLIENT_IFIPADDR are both %s: the two ends need different addresses", c.ServerIfAddr)
	}
	return c.validateIPv6()
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

// ValidUser reports whether s is a user name the configuration accepts.
func ValidUser(s string) bool { return validUser(s) }

// ValidPath reports whether s is a path the configuration accepts: absolute,
// of letters, digits and ._+@-/ only, without "..".
func ValidPath(s string) bool {
	return validPath(s) && !strings.Contains(s, "/../") && !strings.HasSuffix(s, "/..")
}
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

// setCallName accepts a file name under the server's /etc/ppp/peers: a
// word, not starting with '.' (pppd's callfile refuses "..", and a hidden
// file is no peer), empty to turn the key off.
func setCallName(dst *string, v string) error {
	if v != "" && (!validWord(v) || v[0] == '.') {
		return fmt.Errorf("%q is not a peers file name (letters, digits, '.', '_', '-', not starting with '.' or '-')", v)
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

func setCount(dst *int, v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 1000000 {
		return fmt.Errorf("%q is not a count (0-1000000)", v)
	}
	*dst = n
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

// setNetworks takes IPv4 and IPv6 CIDRs separated by commas or spaces.
func setNetworks(dst *[]netip.Prefix, v string) error {
	var out []netip.Prefix
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		p, err := netip.ParsePrefix(f)
		if err != nil || p.Addr().Is4In6() || p.Addr().Zone() != "" {
			return fmt.Errorf("%q is not a network in CIDR form (like 203.0.113.0/24 or 2001:db8:5::/48)", f)
		}
		if p != p.Masked() {
			return fmt.Errorf("%s has host bits set: did you mean %s?", p, p.Masked())
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	*dst = out
	return nil
}

func networksString(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

func setBool(dst *bool, v string) error {
	switch strings.ToLower(v) {
	case "yes", "y", "true", "1", "on":
		*dst = true
	case "no", "n", "false", "0", "off", "":
		*dst = false
	default:
		return fmt.Errorf("%q: use yes or no", v)
	}
	return nil
}

func boolString(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func setMode(dst *string, v string) error {
	switch v {
	case ModePPP, ModeTUN, ModeEthernet, ModeNone:
		*dst = v
		return nil
	}
	return fmt.Errorf("%q is not a mode: use ppp, tun, ethernet or none", v)
}

// setDNS takes DNS: addresses, or peer.
func setDNS(c *Config, v string) error {
	servers, peer, err := dnsconf.ParseServers(v)
	if err != nil {
		return err
	}
	c.DNSServers, c.DNSPeer = servers, peer
	return nil
}

func dnsString(c *Config) string {
	if c.DNSPeer {
		return "peer"
	}
	texts := make([]string, len(c.DNSServers))
	for i, a := range c.DNSServers {
		texts[i] = a.String()
	}
	return strings.Join(texts, " ")
}

// setForwards takes one key's forwards; the error names the key and the
// forward (forward.Parse does).
func setForwards(dst *[]forward.Spec, k forward.Kind, v string) error {
	specs, err := forward.Parse(k, v)
	if err != nil {
		return err
	}
	*dst = specs
	return nil
}

func forwardsString(specs []forward.Spec) string {
	texts := make([]string, len(specs))
	for i, s := range specs {
		texts[i] = s.Text
	}
	return strings.Join(texts, " ")
}

// Forwards are the link's port forwards, local, remote and dynamic.
func (c *Config) Forwards() []forward.Spec {
	return slices.Concat(c.LocalForwards, c.RemoteForwards, c.DynamicForwards)
}

// setAddrBits takes an address with an optional prefix length.
func setAddrBits(dst *netip.Addr, bits *int, v string) error {
	addr, b, cut := strings.Cut(v, "/")
	n := 0
	if cut {
		var err error
		if n, err = strconv.Atoi(b); err != nil || n < 8 || n > 30 {
			return fmt.Errorf("%q: the prefix length must be 8-30 (a subnet both ends share)", v)
		}
	}
	if err := setAddr(dst, addr); err != nil {
		return err
	}
	*bits = n
	return nil
}

// setAddr6Bits takes an IPv6 address of the link, with an optional prefix
// length (ethernet mode); empty turns IPv6 off.
func setAddr6Bits(dst *netip.Addr, bits *int, v string) error {
	if v == "" {
		*dst, *bits = netip.Addr{}, 0
		return nil
	}
	addr, b, cut := strings.Cut(v, "/")
	n := 0
	if cut {
		var err error
		if n, err = strconv.Atoi(b); err != nil || n < 8 || n > 126 {
			return fmt.Errorf("%q: the prefix length must be 8-126 (a subnet both ends share)", v)
		}
	}
	if err := setAddr6(dst, addr); err != nil {
		return err
	}
	*bits = n
	return nil
}

// setAddr6 takes a global or unique local IPv6 address: the link-local
// ones come with the link itself (IPV6CP, or the kernel's for a device).
func setAddr6(dst *netip.Addr, v string) error {
	a, err := netip.ParseAddr(v)
	if err != nil || !a.Is6() || a.Is4In6() || a.Zone() != "" {
		return fmt.Errorf("%q is not an IPv6 address", v)
	}
	if !a.IsGlobalUnicast() || a.IsLinkLocalUnicast() {
		return fmt.Errorf("%s cannot be the IPv6 address of a link: use a global or unique local (fd00::/8) address", a)
	}
	*dst = a
	return nil
}

func addrBitsString(a netip.Addr, bits int) string {
	if bits == 0 {
		return addrString(a)
	}
	return fmt.Sprintf("%s/%d", a, bits)
}

func setMTU(dst *int, v string) error {
	if v == "" {
		*dst = 0
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 68 || n > 65000 {
		return fmt.Errorf("%q is not an MTU (68-65000)", v)
	}
	*dst = n
	return nil
}

func setUnit(dst *int, v string) error {
	if v == "" || v == "any" {
		*dst = -1
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 1<<20 {
		return fmt.Errorf("%q is not a device unit (a number, 0-1048576)", v)
	}
	*dst = n
	return nil
}

func unitString(n int) string {
	if n < 0 {
		return ""
	}
	return strconv.Itoa(n)
}

func intString(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

// setIfName takes an interface name: 1-15 letters, digits, '.', '_', '-'.
func setIfName(dst *string, v string) error {
	if v != "" && (!chars(v, 15, "._-") || v == "." || v == "..") {
		return fmt.Errorf("%q is not an interface name (1-15 letters, digits, '.', '_', '-')", v)
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
