package pppssh

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestModeRules(t *testing.T) {
	const base = "SERVER_HOSTNAME=h\nSERVER_IFIPADDR=198.51.100.2\nCLIENT_IFIPADDR=198.51.100.1\n"
	cases := []struct {
		name, body string
		want       string // "" valid; else a part of the error
	}{
		{"ppp default", base, ""},
		{"tun", base + "MODE=tun\nMTU=1400\n", ""},
		{"ethernet, default /24", base + "MODE=ethernet\n", ""},
		{"ethernet with prefixes", "SERVER_HOSTNAME=h\nMODE=ethernet\nSERVER_IFIPADDR=203.0.113.1/24\nCLIENT_IFIPADDR=203.0.113.50/24\n", ""},
		{"ethernet, server bridged without an address", "SERVER_HOSTNAME=h\nMODE=ethernet\nSERVER_BRIDGE=br0\nCLIENT_IFIPADDR=203.0.113.50/24\n", ""},
		{"unknown mode", base + "MODE=gre\n", `"gre" is not a mode: use ppp, tun, ethernet or none`},
		{"MTU in ppp", base + "MTU=1400\n", "MTU applies to MODE=tun and MODE=ethernet, not MODE=ppp"},
		{"pppd in tun", base + "MODE=tun\nPPPD=/usr/sbin/pppd\n", "PPPD applies to MODE=ppp, not MODE=tun"},
		{"call in ethernet", base + "MODE=ethernet\nSERVER_PPPD_CALL=vpn\n", "SERVER_PPPD_CALL applies to MODE=ppp, not MODE=ethernet"},
		{"bridge in tun", base + "MODE=tun\nSERVER_BRIDGE=br0\n", "SERVER_BRIDGE applies to MODE=ethernet, not MODE=tun"},
		{"prefix in tun", "SERVER_HOSTNAME=h\nMODE=tun\nSERVER_IFIPADDR=198.51.100.2/24\nCLIENT_IFIPADDR=198.51.100.1\n", "applies to MODE=ethernet"},
		{"prefixes differ", "SERVER_HOSTNAME=h\nMODE=ethernet\nSERVER_IFIPADDR=203.0.113.1/24\nCLIENT_IFIPADDR=203.0.113.50/25\n", "give them one prefix length"},
		{"not one subnet", "SERVER_HOSTNAME=h\nMODE=ethernet\nSERVER_IFIPADDR=203.0.113.1/24\nCLIENT_IFIPADDR=198.51.100.50/24\n", "are not in one subnet"},
		{"unit with helper", base + "MODE=tun\nSERVER_HELPER=/usr/sbin/vpn-pppssh\nSERVER_TUN_UNIT=5\n", "SERVER_TUN_UNIT is for OpenSSH's forwarding"},
		{"helper wants the client's address", "SERVER_HOSTNAME=h\nMODE=ethernet\nCLIENT_BRIDGE=br0\nSERVER_IFIPADDR=203.0.113.1/24\nSERVER_HELPER=/usr/sbin/vpn-pppssh\n", "CLIENT_IFIPADDR is needed with SERVER_HELPER"},
		{"server address missing, no bridge", "SERVER_HOSTNAME=h\nMODE=ethernet\nCLIENT_IFIPADDR=203.0.113.50/24\n", "missing required key SERVER_IFIPADDR"},
		{"ethernet, client bridged without an address", "SERVER_HOSTNAME=h\nMODE=ethernet\nCLIENT_BRIDGE=br0\nSERVER_IFIPADDR=203.0.113.1/24\n", ""},
		{"client address missing, no bridge", "SERVER_HOSTNAME=h\nMODE=ethernet\nSERVER_IFIPADDR=203.0.113.1/24\n", "missing required key CLIENT_IFIPADDR"},
		{"bridge in ppp", base + "CLIENT_BRIDGE=br0\n", "CLIENT_BRIDGE applies to MODE=ethernet, not MODE=ppp"},
		{"bridge without address in tun", "SERVER_HOSTNAME=h\nMODE=tun\nSERVER_BRIDGE=br0\nCLIENT_IFIPADDR=198.51.100.1\n", "SERVER_BRIDGE applies to MODE=ethernet, not MODE=tun"},
		{"unit in ppp", base + "SERVER_TUN_UNIT=3\n", "SERVER_TUN_UNIT applies to MODE=tun and MODE=ethernet, not MODE=ppp"},
		{"prefix in ppp", "SERVER_HOSTNAME=h\nSERVER_IFIPADDR=198.51.100.2/24\nCLIENT_IFIPADDR=198.51.100.1\n", "MODE=ppp links a pair of addresses"},
		{"server pppd in tun", base + "MODE=tun\nSERVER_PPPD=/usr/sbin/pppd\n", "SERVER_PPPD applies to MODE=ppp, not MODE=tun"},
		{"none: forwards only", "SERVER_HOSTNAME=h\nMODE=none\nREMOTE_FORWARDS=2222:localhost:22\n", ""},
		{"none: forwards and addresses", base + "MODE=none\nLOCAL_FORWARDS=8080:intranet:80\n", "SERVER_IFIPADDR needs a tunnel: MODE=none carries only port forwards"},
		{"none without forwards", "SERVER_HOSTNAME=h\nMODE=none\n", "MODE=none carries only port forwards: set LOCAL_FORWARDS"},
		{"none with a default route", "SERVER_HOSTNAME=h\nMODE=none\nDYNAMIC_FORWARDS=1080\nDEFAULT_ROUTE=yes\n", "DEFAULT_ROUTE needs a tunnel"},
		{"none with pppd", "SERVER_HOSTNAME=h\nMODE=none\nDYNAMIC_FORWARDS=1080\nPPPD=/usr/sbin/pppd\n", "PPPD applies to MODE=ppp, not MODE=none"},
		{"a bad forward names its key and line", base + "LOCAL_FORWARDS=8080:intranet\n", `f:4: LOCAL_FORWARDS: "8080:intranet": want`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Defaults()
			_, err := c.Parse("f", []byte(tc.body))
			if err == nil {
				err = c.Validate()
			}
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// TestUnknownModeNamesTheLine: a mode that does not exist is refused at
// its line, with the modes that do, from a file and from --mode alike.
func TestUnknownModeNamesTheLine(t *testing.T) {
	c := Defaults()
	_, err := c.Parse("links/a.conf", []byte("SERVER_HOSTNAME=h\n\nMODE=tap\n"))
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Line != 3 || ce.Key != "MODE" ||
		err.Error() != `links/a.conf:3: MODE: "tap" is not a mode: use ppp, tun, ethernet or none` {
		t.Errorf("got %v", err)
	}
	c = Defaults()
	if err := c.Set("MODE", "PPP"); err == nil {
		t.Error("MODE=PPP accepted: modes are lower case, as pppd's and sshd's are")
	}
	if err := c.Set("MODE", "tun"); err != nil || c.Mode != ModeTUN || c.Get("MODE") != "tun" {
		t.Errorf("MODE=tun: %v, mode %q", err, c.Mode)
	}
	if d := Defaults(); d.Mode != ModePPP || d.Get("MODE") != "ppp" {
		t.Errorf("default mode %q", d.Mode)
	}
}

func TestModeRequest(t *testing.T) {
	c := Defaults()
	if _, err := c.Parse("f", []byte("SERVER_HOSTNAME=h\nMODE=ethernet\nSERVER_IFIPADDR=203.0.113.1/25\nCLIENT_IFIPADDR=203.0.113.50\nMTU=1400\n")); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	r := c.ServerRequest()
	if r.Mode != ModeEthernet || r.Bits != 25 || r.MTU != 1400 || !r.Offload || r.LocalPrefix() != netip.MustParsePrefix("203.0.113.1/25") {
		t.Errorf("request %+v, local %v", r, r.LocalPrefix())
	}
	if got := c.ClientIfPrefix(); got != netip.MustParsePrefix("203.0.113.50/25") {
		t.Errorf("client prefix %v", got)
	}
	if err := r.Validate(); err != nil {
		t.Errorf("its own request: %v", err)
	}
	ppp := Defaults()
	ppp.Parse("f", []byte("SERVER_HOSTNAME=h\nSERVER_IFIPADDR=198.51.100.2\nCLIENT_IFIPADDR=198.51.100.1\n"))
	if r := ppp.ServerRequest(); r.Mode != "" || r.EffectiveMode() != ModePPP || r.Offload {
		t.Errorf("a ppp request names a mode or offload, which an older server would refuse: %+v", r)
	}
	if _, err := c.Parse("f", []byte("OFFLOAD=no\n")); err != nil {
		t.Fatal(err)
	}
	if r := c.ServerRequest(); r.Offload {
		t.Errorf("OFFLOAD=no still asks for offload: %+v", r)
	}
}

func TestReadRequestRefusesBadModes(t *testing.T) {
	const head = `{"v":1,"link":"a","ipparam":"vpn","local":"198.51.100.2","peer":"198.51.100.1"`
	for _, in := range []string{
		head + `,"mode":"gre"}`,
		head + `,"mode":"ppp","mtu":1400}`,
		head + `,"mode":"tun","mtu":20}`,
		head + `,"mode":"tun","bridge":"br0"}`,
		head + `,"mode":"tun","bits":24}`,
		head + `,"offload":true}`,
		head + `,"mode":"ppp","offload":true}`,
		head + `,"mode":"tun","offload":1}`,
		head + `,"mode":"ethernet","bits":31}`,
		head + `,"mode":"ethernet","bits":24,"bridge":"br0;reboot"}`,
		head + `,"mode":"ethernet","bits":24,"bridge":"../../x"}`,
		`{"v":1,"link":"a","ipparam":"vpn","local":"203.0.113.2","peer":"198.51.100.1","mode":"ethernet","bits":24}`,
		`{"v":1,"link":"a","ipparam":"vpn","peer":"198.51.100.1","mode":"ethernet","bits":24}`,
	} {
		if _, err := ReadRequest(strings.NewReader(in + "\n")); err == nil {
			t.Errorf("accepted %s", in)
		}
	}
	_, err := ReadRequest(strings.NewReader(head + `,"mode":"gre\u001b[2J"}` + "\n"))
	if err == nil || !strings.Contains(err.Error(), `bad mode "gre\\x1b[2J"`) {
		t.Errorf("an unknown mode: %v, want a refusal naming the field and its value", err)
	}
	old := head + "}\n" // an older client names no mode
	if r, err := ReadRequest(strings.NewReader(old)); err != nil || r.EffectiveMode() != ModePPP {
		t.Errorf("a request without a mode: %v, mode %q, want ppp", err, r.EffectiveMode())
	}
	ok := `{"v":1,"link":"a","ipparam":"vpn","peer":"198.51.100.1","mode":"ethernet","bits":24,"bridge":"br0"}`
	if _, err := ReadRequest(strings.NewReader(ok + "\n")); err != nil {
		t.Errorf("a bridged request: %v", err)
	}
}

func TestPolicyBridgesAndSubnets(t *testing.T) {
	eth := func(r *Request) { r.Mode, r.Bits = ModeEthernet, 24 }
	cases := []struct {
		name, policy string
		change       func(*Request)
		want         string
	}{
		{"subnet inside", "ALLOW_PEERS=198.51.100.0/24\n", eth, ""},
		{"subnet wider than ALLOW_PEERS", "ALLOW_PEERS=198.51.100.0/25\n", eth, "subnet 198.51.100.0/24 is outside ALLOW_PEERS"},
		{"bridge not allowed", "ALLOW_PEERS=198.51.100.0/24\n", func(r *Request) { eth(r); r.Bridge, r.Local = "br0", netip.Addr{} },
			"joining bridge br0 needs ALLOW_BRIDGES listing it in POLICY (it does not set ALLOW_BRIDGES)"},
		{"another bridge allowed", "ALLOW_PEERS=198.51.100.0/24\nALLOW_BRIDGES=br1\n", func(r *Request) { eth(r); r.Bridge, r.Local = "br0", netip.Addr{} },
			"(it says ALLOW_BRIDGES=br1)"},
		{"bridge allowed", "ALLOW_PEERS=198.51.100.0/24\nALLOW_BRIDGES=br1,br0\n", func(r *Request) { eth(r); r.Bridge, r.Local = "br0", netip.Addr{} }, ""},
		{"routes on a bridge", "ALLOW_PEERS=198.51.100.0/24\nALLOW_BRIDGES=br0\nALLOW_FORWARDING=yes\n", func(r *Request) {
			eth(r)
			r.Bridge, r.Local, r.Forward = "br0", netip.Addr{}, true
		}, "routes, forwarding and masquerade do not apply"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := policyFrom(t, str(tc.policy))
			r := baseRequest()
			tc.change(&r)
			if err := r.Validate(); err != nil {
				t.Fatalf("the request itself: %v", err)
			}
			err := p.Check(r)
			want := strings.ReplaceAll(tc.want, "POLICY", p.Path())
			switch {
			case want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
				t.Errorf("got %v, want %q", err, want)
			}
		})
	}
	for _, bad := range []string{"ALLOW_BRIDGES=br0;x\n", "ALLOW_BRIDGES=sixteen-characters\n"} {
		if _, err := LoadPolicy(writeTemp(t, "ALLOW_PEERS=198.51.100.0/24\n"+bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func writeTemp(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "server.conf")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
