package setup

import (
	"crypto/ed25519"
	"crypto/rand"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func clientKey(t *testing.T) []byte {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))) + " vpn-pppssh@client\n")
}

func byWhat(steps []Step, prefix string) Step {
	for _, s := range steps {
		if strings.HasPrefix(s.What, prefix) {
			return s
		}
	}
	return Step{}
}

func TestPlanSaysWhatItWouldChange(t *testing.T) {
	dir := t.TempDir()
	c := Config{Account: "root", Helper: "/usr/local/sbin/vpn-pppssh", Key: clientKey(t),
		PolicyPath: filepath.Join(dir, "server.conf"), SudoersDir: dir, PPPD: "/usr/sbin/pppd",
		Peers: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}}
	steps, err := Plan(c)
	if err != nil {
		t.Fatal(err)
	}
	if s := byWhat(steps, "account root"); s.Action != Unchanged {
		t.Errorf("an existing account: %+v", s)
	}
	sudo := byWhat(steps, filepath.Join(dir, "vpn-pppssh-root"))
	if sudo.Action != Change || !strings.HasPrefix(sudo.Detail, "root ALL=(root) NOPASSWD: /usr/local/sbin/vpn-pppssh serve") {
		t.Errorf("sudoers: %+v", sudo)
	}
	if p := byWhat(steps, c.PolicyPath); p.Action != Change || !strings.Contains(p.Detail, "ALLOW_PEERS=198.51.100.0/24") {
		t.Errorf("policy: %+v", p)
	}
	// Only the sudoers and policy steps are applied here (not root's
	// authorized_keys): visudo checks the drop-in.
	if err := Apply([]Step{sudo, byWhat(steps, c.PolicyPath)}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "vpn-pppssh-root"))
	if err != nil || fi.Mode().Perm() != 0o440 {
		t.Fatalf("sudoers drop-in: %v %v", fi, err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".vpn-pppssh-setup.tmp")); !os.IsNotExist(err) {
		t.Errorf("temporary file left: %v", err)
	}
	steps, err = Plan(c)
	if err != nil {
		t.Fatal(err)
	}
	if s := byWhat(steps, filepath.Join(dir, "vpn-pppssh-root")); s.Action != Unchanged {
		t.Errorf("sudoers on the second run: %+v", s)
	}
	if s := byWhat(steps, c.PolicyPath); s.Action != Keep || !strings.Contains(s.Detail, "ALLOW_PEERS 198.51.100.0/24") {
		t.Errorf("policy on the second run: %+v", s)
	}
	// An admin's own drop-in is never replaced.
	if err := os.WriteFile(filepath.Join(dir, "vpn-pppssh-root"), []byte("root ALL=(ALL) ALL\n"), 0o440); err != nil {
		t.Fatal(err)
	}
	if steps, _ = Plan(c); byWhat(steps, filepath.Join(dir, "vpn-pppssh-root")).Action != Keep {
		t.Errorf("an admin's sudoers file was to be replaced")
	}
	// No policy and no --peers: the server half cannot work.
	c.PolicyPath, c.Peers = filepath.Join(dir, "none.conf"), nil
	if steps, _ = Plan(c); byWhat(steps, c.PolicyPath).Action != Missing {
		t.Errorf("a missing policy without peers is not reported")
	}
}

func TestVisudoRefusalLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	err := writeSudoers(filepath.Join(dir, "vpn-pppssh-x"), "this is not sudoers syntax (\n")
	if err == nil || !strings.Contains(err.Error(), "visudo -c refused it") {
		t.Fatalf("%v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}
}

func TestPlanRefusesBadInput(t *testing.T) {
	good := Config{Account: "vpn", Helper: "/usr/sbin/vpn-pppssh", Key: clientKey(t), SudoersDir: t.TempDir(), PolicyPath: "/nonexistent"}
	for name, c := range map[string]Config{
		"account": {Account: "vpn;x", Helper: good.Helper, Key: good.Key},
		"helper":  {Account: "vpn", Helper: "vpn-pppssh", Key: good.Key},
		"options": {Account: "vpn", Helper: good.Helper, Key: append([]byte(`command="x" `), good.Key...)},
		"garbage": {Account: "vpn", Helper: good.Helper, Key: []byte("not a key")},
	} {
		if _, err := Plan(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
