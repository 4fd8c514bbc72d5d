package pppssh

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The HOWTO script's settings block must load unchanged.
const howtoBlock = `# You will need to change these variables...

# The host name or IP address of the SSH server
SERVER_HOSTNAME=vpn.example.org

# The username on the VPN server that will run the tunnel.
SERVER_USERNAME=sshslave

# The VPN network interface on the server should use this address:
SERVER_IFIPADDR=192.0.2.2

# ...and on the client, this address:
CLIENT_IFIPADDR=192.0.2.1

# This tells ssh to use unprivileged high ports
LOCAL_SSH_OPTS="-P"
`

func TestParseHOWTOBlock(t *testing.T) {
	c := Defaults()
	notices, err := c.Parse("vpn.conf", []byte(howtoBlock))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	got := c.ServerHostname + " " + c.ServerUsername + " " + c.ServerIfAddr.String() + " " + c.ClientIfAddr.String()
	if want := "vpn.example.org sshslave 192.0.2.2 192.0.2.1"; got != want {
		t.Errorf("parsed %q, want %q", got, want)
	}
	// -P asks ssh for an unprivileged source port: what the built-in
	// client always does, so there is nothing to say.
	if len(notices) != 0 {
		t.Errorf("notices = %q", notices)
	}
	if c.ServerPort != 22 || c.PPPD != "/usr/sbin/pppd" || c.ServerPPPD != "/usr/sbin/pppd" || c.IPParam != "vpn" {
		t.Errorf("defaults lost: %+v", c)
	}
}

func TestParseValues(t *testing.T) {
	tests := []struct {
		line, key, want string
	}{
		{`SERVER_HOSTNAME=host`, "SERVER_HOSTNAME", "host"},
		{`SERVER_HOSTNAME="host"`, "SERVER_HOSTNAME", "host"},
		{`SERVER_HOSTNAME='host'`, "SERVER_HOSTNAME", "host"},
		{`  SERVER_HOSTNAME=host   # comment`, "SERVER_HOSTNAME", "host"},
		{`export SERVER_HOSTNAME=host`, "SERVER_HOSTNAME", "host"},
		{`SERVER_HOSTNAME="host" # comment`, "SERVER_HOSTNAME", "host"},
		{`SERVER_PORT=2222`, "SERVER_PORT", "2222"},
		{`SSH_IDENTITY=/root/.ssh/id_vpn`, "SSH_IDENTITY", "/root/.ssh/id_vpn"},
		{`SSH_IDENTITY=`, "SSH_IDENTITY", ""},
		{`CONNECT_TIMEOUT=5`, "CONNECT_TIMEOUT", "5"},
		{`SERVER_HOSTNAME=2001:db8::1`, "SERVER_HOSTNAME", "2001:db8::1"},
	}
	for _, tt := range tests {
		c := Defaults()
		if _, err := c.Parse("f", []byte(tt.line+"\n")); err != nil {
			t.Errorf("%s: %v", tt.line, err)
			continue
		}
		if got := c.Get(tt.key); got != tt.want {
			t.Errorf("%s: %s = %q, want %q", tt.line, tt.key, got, tt.want)
		}
	}
}

func TestParseErrorsNameLineAndKey(t *testing.T) {
	tests := []struct {
		text, want string
		shell      bool
	}{
		{"SERVER_HOSTNAME=$(reboot)", "f:1: SERVER_HOSTNAME: shell syntax", true},
		{"\nSERVER_HOSTNAME=`reboot`", "f:2: SERVER_HOSTNAME: shell syntax", true},
		{`SERVER_USERNAME="$USER"`, "f:1: SERVER_USERNAME: shell syntax", true},
		{`SERVER_HOSTNAME=a;reboot`, "f:1: SERVER_HOSTNAME: shell syntax", true},
		{`SERVER_HOSTNAME=a b`, "more than one word (\"a b\")", true},
		{`SERVER_HOSTNAME=a|b`, "f:1: SERVER_HOSTNAME: shell syntax", true},
		{`SERVER_HOSTNAME="unterminated`, "f:1: SERVER_HOSTNAME: unterminated double quote", false},
		{`SERVER_HOSTNAME='a b'`, `f:1: SERVER_HOSTNAME: "a b" is not a host name`, false},
		{`SERVER_HOSTNAME=-oProxyCommand=x`, `f:1: SERVER_HOSTNAME: "-oProxyCommand=x" is not a host name`, false},
		{`SERVER_USERNAME=-l`, `f:1: SERVER_USERNAME: "-l" is not a user name`, false},
		{`BOGUS=1`, "f:1: BOGUS: unknown key", false},
		{`SERVER_HOSTNMAE=gw`, "f:1: SERVER_HOSTNMAE: unknown key (did you mean SERVER_HOSTNAME?)", false},
		{`server_port=22`, "f:1: server_port: unknown key (did you mean SERVER_PORT?)", false},
		{`KEEPALIV=5`, "f:1: KEEPALIV: unknown key (did you mean KEEPALIVE?)", false},
		{`if true; then`, `f:1: not a KEY=VALUE line`, false},
		{`SERVER_PORT=0`, `f:1: SERVER_PORT: "0" is not a port number`, false},
		{`SERVER_PORT=65536`, `f:1: SERVER_PORT: "65536" is not a port number`, false},
		{`CLIENT_IFIPADDR=300.1.1.1`, `f:1: CLIENT_IFIPADDR: "300.1.1.1" is not an IPv4 address`, false},
		{`CLIENT_IFIPADDR=2001:db8::1`, `f:1: CLIENT_IFIPADDR: "2001:db8::1" is not an IPv4 address`, false},
		{`CLIENT_IFIPADDR=127.0.0.1`, `f:1: CLIENT_IFIPADDR: 127.0.0.1 cannot be the address`, false},
		{`PPPD=pppd`, `f:1: PPPD: "pppd" is not an absolute path`, false},
		{`PPPD=`, `f:1: PPPD: empty value`, false},
		{`SERVER_PPPD='/usr/sbin/pppd call x'`, `f:1: SERVER_PPPD: "/usr/sbin/pppd call x" is not an absolute path`, false},
		{`IPPARAM='a b'`, `f:1: IPPARAM: "a b": use 1-64 letters`, false},
		{`CONNECT_TIMEOUT=0`, `f:1: CONNECT_TIMEOUT: "0" is not a number of seconds`, false},
	}
	for _, tt := range tests {
		c := Defaults()
		_, err := c.Parse("f", []byte(tt.text))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want it to contain %q", tt.text, err, tt.want)
			continue
		}
		var ce *ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("%q: %T is not a *ConfigError", tt.text, err)
		}
		if got := errors.Is(err, ErrShellSyntax); got != tt.shell {
			t.Errorf("%q: errors.Is(ErrShellSyntax) = %v, want %v", tt.text, got, tt.shell)
		}
	}
}

func TestValidate(t *testing.T) {
	c := Defaults()
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "missing required key SERVER_HOSTNAME, SERVER_IFIPADDR, CLIENT_IFIPADDR") {
		t.Errorf("empty config: %v", err)
	}
	if _, err := c.Parse("f", []byte("SERVER_HOSTNAME=h\nSERVER_IFIPADDR=192.0.2.1\nCLIENT_IFIPADDR=192.0.2.1\n")); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "both 192.0.2.1") {
		t.Errorf("equal addresses: %v", err)
	}
	if err := c.Set("CLIENT_IFIPADDR", "192.0.2.5"); err != nil {
		t.Fatal(err)
	}
	c.Name = "../etc"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "link name") {
		t.Errorf("bad name: %v", err)
	}
}

func TestLoadFileRefusesWritableByOthers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the ownership check applies when running as root")
	}
	p := filepath.Join(t.TempDir(), "vpn.conf")
	if err := os.WriteFile(p, []byte(howtoBlock), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o666); err != nil {
		t.Fatal(err)
	}
	c := Defaults()
	if _, err := c.LoadFile(p); err == nil || !strings.Contains(err.Error(), "writable by group or others") {
		t.Errorf("mode 0666: %v", err)
	}
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := c.LoadFile(p); err != nil {
		t.Errorf("mode 0600: %v", err)
	}
}

func TestServerCommandQuoting(t *testing.T) {
	c := Defaults()
	got := c.ServerCommand()
	if want := "sudo -n /usr/sbin/pppd nodetach notty noauth logfd 2 lcp-echo-interval 10 lcp-echo-failure 3 refuse-pap refuse-chap refuse-mschap refuse-mschap-v2 refuse-eap ipparam vpn"; got != want {
		t.Errorf("ServerCommand = %q, want %q", got, want)
	}
	for in, want := range map[string]string{"a": "a", "": "''", "a b": "'a b'", "it's": `'it'\''s'`, "$(x)": "'$(x)'"} {
		if got := ShellQuote(in); got != want {
			t.Errorf("ShellQuote(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLocalPPPDArgs(t *testing.T) {
	c := Defaults()
	if _, err := c.Parse("f", []byte("SERVER_IFIPADDR=192.0.2.2\nCLIENT_IFIPADDR=192.0.2.1\n")); err != nil {
		t.Fatal(err)
	}
	c.Name = "office"
	got := strings.Join(c.localPPPDArgs("/dev/pts/7"), " ")
	want := "/dev/pts/7 nodetach local nocrtscts nolock noauth refuse-pap refuse-chap refuse-mschap refuse-mschap-v2 refuse-eap passive noccp nodefaultroute lcp-echo-interval 10 lcp-echo-failure 3 noipv6 ipparam vpn linkname vpn-pppssh-office 192.0.2.1:192.0.2.2"
	if got != want {
		t.Errorf("args:\n got %s\nwant %s", got, want)
	}
	// DNS=peer asks for the peer's name servers, and keeps USEPEERDNS
	// from the ip-up scripts.
	if err := c.Set("DNS", "peer"); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.localPPPDArgs("/dev/pts/7"), " "); !strings.Contains(got, " lcp-echo-failure 3 usepeerdns unset USEPEERDNS noipv6 ipparam vpn ") {
		t.Errorf("DNS=peer args: %s", got)
	}
}

// Neither pppd authenticates itself to its peer, with any protocol: a
// hostile peer must not get a secret from pap-secrets or chap-secrets.
func TestBothPPPDsRefuseToAuthenticate(t *testing.T) {
	c := Defaults()
	for name, words := range map[string][]string{
		"local pppd":          c.localPPPDArgs("/dev/pts/0"),
		"server command line": strings.Fields(c.ServerCommand()),
	} {
		for _, w := range []string{"refuse-pap", "refuse-chap", "refuse-mschap", "refuse-mschap-v2", "refuse-eap"} {
			if !slices.Contains(words, w) {
				t.Errorf("%s lacks %s: %q", name, w, words)
			}
		}
	}
}

// SERVER_PPPD_CALL replaces the option list with `call NAME`, whose two
// words a sudoers line can pin exactly.
func TestServerPPPDCall(t *testing.T) {
	c := Defaults()
	if _, err := c.Parse("f", []byte("SERVER_HOSTNAME=h\nSERVER_IFIPADDR=192.0.2.2\nCLIENT_IFIPADDR=192.0.2.1\nSERVER_PPPD_CALL=vpn-pppssh\n")); err != nil {
		t.Fatal(err)
	}
	if got, want := c.ServerCommand(), "sudo -n /usr/sbin/pppd call vpn-pppssh"; got != want {
		t.Errorf("ServerCommand = %q, want %q", got, want)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	if err := c.Set("SERVER_HELPER", "/usr/local/sbin/vpn-pppssh"); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "SERVER_PPPD_CALL and SERVER_HELPER exclude each other") {
		t.Errorf("Validate with both: %v", err)
	}
	for _, bad := range []string{"vpn pppssh", "../x", "a/b", ".hidden", "-x", "a;b", "a\nb", "$(x)", strings.Repeat("a", 65)} {
		d := Defaults()
		if err := d.Set("SERVER_PPPD_CALL", bad); err == nil {
			t.Errorf("SERVER_PPPD_CALL=%q accepted", bad)
		}
		if d.ServerPPPDCall != "" {
			t.Errorf("SERVER_PPPD_CALL=%q left %q behind", bad, d.ServerPPPDCall)
		}
	}
	d := Defaults()
	if err := d.Set("SERVER_PPPD_CALL", ""); err != nil || strings.Contains(d.ServerCommand(), " call ") {
		t.Errorf("empty SERVER_PPPD_CALL: %v, %q", err, d.ServerCommand())
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(howtoBlock))
	f.Add([]byte("SERVER_HOSTNAME='a'\nSERVER_PORT=\"22\" # x\n"))
	f.Add([]byte("export X=$(y)\n\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := Defaults()
		if _, err := c.Parse("fuzz", data); err != nil {
			return
		}
		// Whatever was accepted must be safe to put on a command line.
		for _, w := range append(c.localPPPDArgs("/dev/pts/0"), c.ServerCommand()) {
			if strings.ContainsAny(w, "\x00\n") {
				t.Fatalf("control character reached a command: %q", w)
			}
		}
		for _, k := range Keys {
			v := c.Get(k.Name)
			if strings.HasPrefix(v, "-") {
				t.Fatalf("%s accepted a value that looks like an option: %q", k.Name, v)
			}
			onCommandLine := k.Name == "PPPD" || k.Name == "SERVER_PPPD" || k.Name == "IPPARAM" || k.Name == "SERVER_HELPER" || k.Name == "SERVER_PPPD_CALL"
			if onCommandLine && v != "" && ShellQuote(v) != v {
				t.Fatalf("%s accepted a value that needs shell quoting: %q", k.Name, v)
			}
		}
	})
}

// LOCAL_SSH_OPTS of a migrated script keeps choosing the port, key, user
// and path it chose; what has no equivalent is refused by name.
func TestLocalSSHOpts(t *testing.T) {
	parse := func(text string) (Config, []string, error) {
		c := Defaults()
		notices, err := c.Parse("vpn.conf", []byte(howtoBlock+text))
		return c, notices, err
	}
	c, notices, err := parse("LOCAL_SSH_OPTS=\"-P -p 2222 -i /root/.ssh/id_vpn -o ServerAliveInterval=15 -J jump@192.0.2.9 -o BatchMode=yes\"\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.ServerPort != 2222 || c.SSHIdentity != "/root/.ssh/id_vpn" || c.Keepalive != 15*time.Second || c.SSHProxyJump != "jump@192.0.2.9" {
		t.Errorf("translated to port %d, identity %q, keepalive %v, jump %q", c.ServerPort, c.SSHIdentity, c.Keepalive, c.SSHProxyJump)
	}
	if len(notices) != 1 || !strings.Contains(notices[0], "vpn.conf:17: LOCAL_SSH_OPTS read as SERVER_PORT=2222 SSH_IDENTITY=/root/.ssh/id_vpn SSH_PROXY_JUMP=jump@192.0.2.9 KEEPALIVE=15") {
		t.Errorf("notices = %q", notices)
	}
	// The script's forwards become the forward keys, several adding up.
	if c, _, err = parse("LOCAL_SSH_OPTS=\"-L 8080:intranet:80 -L5432:db:5432 -R 2222:localhost:22 -D 1080\"\n"); err != nil ||
		forwardsString(c.LocalForwards) != "8080:intranet:80 5432:db:5432" || forwardsString(c.RemoteForwards) != "2222:localhost:22" || forwardsString(c.DynamicForwards) != "1080" {
		t.Errorf("-L -R -D: %v, %q %q %q", err, forwardsString(c.LocalForwards), forwardsString(c.RemoteForwards), forwardsString(c.DynamicForwards))
	}
	if _, _, err = parse("LOCAL_SSH_OPTS=\"-L 8080:intranet\"\n"); err == nil || !strings.Contains(err.Error(), `LOCAL_FORWARDS: "8080:intranet": want`) {
		t.Errorf("a bad -L: %v", err)
	}
	// -lUSER in one word, and a file key that agrees.
	if c, _, err = parse("SERVER_USERNAME=tunnel\nLOCAL_SSH_OPTS=\"-ltunnel -oPort=22\"\n"); err != nil || c.ServerUsername != "tunnel" {
		t.Errorf("-ltunnel: %v, %q", err, c.ServerUsername)
	}
	for opts, want := range map[string]string{
		"-p 2222\nSERVER_PORT=22":     "vpn.conf:17: LOCAL_SSH_OPTS: says SERVER_PORT=2222, but the file also sets SERVER_PORT=22",
		"-C":                          "ssh option -C has no equivalent here",
		"-o StrictHostKeyChecking=no": "never accepts an unknown or changed host key",
		"-o Compression=yes":          "-o Compression=yes has no equivalent here",
		"-p 2222 -o Port=2200":        "-o Port=2200 gives SERVER_PORT=2200, and an earlier option 2222",
		"-p":                          "-p needs a value",
		"-i relative/key":             "SSH_IDENTITY:",
		"2222":                        `"2222" is not an ssh option`,
	} {
		first, rest, _ := strings.Cut(opts, "\n")
		text := "LOCAL_SSH_OPTS=\"" + first + "\"\n"
		if rest != "" {
			text += rest + "\n"
		}
		if _, _, err := parse(text); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", opts, err, want)
		}
	}
}
