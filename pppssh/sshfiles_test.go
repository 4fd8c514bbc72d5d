package pppssh

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the ownership checks apply to root")
	}
}

func writeFile(t *testing.T, p string, data []byte, mode os.FileMode) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func chmod(t *testing.T, p string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func chown(t *testing.T, p string, uid int) {
	t.Helper()
	if err := os.Chown(p, uid, uid); err != nil {
		t.Fatal(err)
	}
}

func wantRefused(t *testing.T, what string, err error, words ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: accepted", what)
		return
	}
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: %v; want it to say %q", what, err, w)
		}
	}
}

// A known_hosts file someone else could write decides whom root trusts: it
// is refused, naming the file and the fix.
func TestKnownHostsMustBeRoots(t *testing.T) {
	needRoot(t)
	s, _ := newSigner(t)
	kh := writeKnownHosts(t, "192.0.2.9:22", s.PublicKey())
	if _, err := loadHostKeys(kh, t.TempDir()); err != nil {
		t.Fatalf("a 0600 root-owned file: %v", err)
	}
	chmod(t, kh, 0o644)
	if _, err := loadHostKeys(kh, t.TempDir()); err != nil {
		t.Fatalf("a 0644 root-owned file: %v", err)
	}
	chmod(t, kh, 0o666)
	_, err := loadHostKeys(kh, t.TempDir())
	wantRefused(t, "world-writable known_hosts", err, "SSH_KNOWN_HOSTS", kh, "writable by group or others", "chmod go-w")
	chmod(t, kh, 0o644)
	chown(t, kh, 65534)
	_, err = loadHostKeys(kh, t.TempDir())
	wantRefused(t, "known_hosts of another user", err, kh, "owned by uid 65534")
	chown(t, kh, 0)
	chmod(t, filepath.Dir(kh), 0o777)
	_, err = loadHostKeys(kh, t.TempDir())
	wantRefused(t, "known_hosts in a world-writable folder", err, filepath.Dir(kh), "writable by group or others")

	// The default ~/.ssh/known_hosts, in a ~/.ssh others can write.
	home := t.TempDir()
	writeFile(t, filepath.Join(home, ".ssh", "known_hosts"), nil, 0o644)
	chmod(t, filepath.Join(home, ".ssh"), 0o770)
	_, err = loadHostKeys("", home)
	wantRefused(t, "~/.ssh writable by its group", err, filepath.Join(home, ".ssh"), "writable by group or others")
}

func writeKey(t *testing.T, p string, mode os.FileMode) string {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, p, pem.EncodeToMemory(block), mode)
}

// Root's key is refused when others can read it (OpenSSH's "UNPROTECTED
// PRIVATE KEY FILE") or could have replaced it.
func TestIdentityMustBeRootsAndPrivate(t *testing.T) {
	needRoot(t)
	p := writeKey(t, filepath.Join(t.TempDir(), "id_ed25519"), 0o600)
	if _, err := readKey(p); err != nil {
		t.Fatalf("a 0600 root-owned key: %v", err)
	}
	chmod(t, p, 0o640)
	_, err := readKey(p)
	wantRefused(t, "key readable by its group", err, "UNPROTECTED PRIVATE KEY FILE", p, "chmod 600")
	chmod(t, p, 0o600)
	chown(t, p, 65534)
	_, err = readKey(p)
	wantRefused(t, "key of another user", err, p, "owned by uid 65534")
	chown(t, p, 0)
	chmod(t, filepath.Dir(p), 0o777)
	_, err = readKey(p)
	wantRefused(t, "key in a world-writable folder", err, filepath.Dir(p), "writable by group or others")

	// A default key that is refused is skipped with a warning, not used.
	home := t.TempDir()
	writeKey(t, filepath.Join(home, ".ssh", "id_ed25519"), 0o644)
	t.Setenv("SSH_AUTH_SOCK", "")
	_, _, err = signers(Target{}, home, quiet())
	wantRefused(t, "only default key unprotected", err, "no SSH key")
}

// ~/.ssh/config and what it includes choose the server, the account and
// the key: as root they must be root's alone.
func TestSSHConfigMustBeRoots(t *testing.T) {
	needRoot(t)
	home := t.TempDir()
	cfgPath := writeFile(t, filepath.Join(home, ".ssh", "config"), []byte("Host office\n  HostName 192.0.2.7\n  User tunnel\n"), 0o600)
	c := Defaults()
	if _, err := c.Parse("f", []byte("SERVER_HOSTNAME=office\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ResolveTarget(home); err != nil {
		t.Fatalf("a 0600 root-owned config: %v", err)
	}
	chmod(t, cfgPath, 0o622)
	_, err := c.ResolveTarget(home)
	wantRefused(t, "writable ~/.ssh/config", err, "refusing ssh_config", cfgPath, "chmod go-w")
	chmod(t, cfgPath, 0o600)

	// An included file is held to the same rule, found as the ssh_config
	// library finds it (here by an absolute path).
	inc := writeFile(t, filepath.Join(t.TempDir(), "conf.d", "evil.conf"), []byte("Host office\n  HostName 203.0.113.66\n"), 0o666)
	writeFile(t, cfgPath, []byte("Include "+filepath.Join(filepath.Dir(inc), "*.conf")+"\nHost office\n  HostName 192.0.2.7\n  User tunnel\n"), 0o600)
	_, err = c.ResolveTarget(home)
	wantRefused(t, "writable included file", err, cfgPath, "Include", inc, "writable by group or others")
	chmod(t, inc, 0o644)
	tg, err := c.ResolveTarget(home)
	if err != nil || tg.Host != "203.0.113.66" {
		t.Errorf("a safe included file: %+v %v (the check must not stop a good Include)", tg, err)
	}
}

// An Include value is read both ways: the library splits it at single
// spaces only, so a tab inside stays part of one file name there.
func TestIncludeWordsCoverTheLibrarysReading(t *testing.T) {
	line := "Include a\tb c"
	fields := []string{"a", "b", "c"}
	got := includeWords(line, fields)
	for _, want := range []string{"a", "b", "c", "a\tb"} {
		if !slices.Contains(got, want) {
			t.Errorf("includeWords(%q) = %q, lacks %q", line, got, want)
		}
	}
}
