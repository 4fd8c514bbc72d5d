package lab_test

import (
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vpn-pppssh/vpn-pppssh/lab"
)

// TestServerSetup: server-setup --apply on a server with no account for
// the client makes one that works with nothing else done by hand, and a
// second run changes nothing.
func TestServerSetup(t *testing.T) {
	l := needLab(t)
	if _, err := user.Lookup(lab.SetupUser); err == nil {
		t.Fatalf("account %s exists before the test: it must start clean", lab.SetupUser)
	}
	sudoers := "/etc/sudoers.d/vpn-pppssh-" + lab.SetupUser
	defer os.Remove(sudoers) // the account itself goes with the lab's /etc
	args := []string{"server-setup", "--account", lab.SetupUser, "--key", l.Identity + ".pub", "--helper", l.Bin}
	run := func(extra ...string) string {
		t.Helper()
		out, err := lab.InNS(lab.ServerNS, l.Bin, append(args, extra...)...)
		if err != nil {
			t.Fatalf("server-setup %v: %v", extra, err)
		}
		t.Logf("vpn-pppssh server-setup %s\n%s", strings.Join(extra, " "), out)
		return out
	}
	// Without --apply nothing changes.
	if out := run(); !strings.Contains(out, "[change]     account "+lab.SetupUser) || !strings.Contains(out, "run again with --apply") {
		t.Errorf("dry run: %s", out)
	}
	if _, err := user.Lookup(lab.SetupUser); err == nil {
		t.Fatal("the dry run created the account")
	}
	out := run("--apply")
	for _, want := range []string{"[done]       account " + lab.SetupUser, "[done]       ~" + lab.SetupUser + "/.ssh/authorized_keys",
		"[done]       " + sudoers, "[keep]       " + lab.PolicyFile} {
		if !strings.Contains(out, want) {
			t.Errorf("--apply lacks %q", want)
		}
	}
	files := []string{sudoers, "/home/" + lab.SetupUser + "/.ssh/authorized_keys"}
	before := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		before[f] = string(b)
	}
	if !strings.HasPrefix(before[files[1]], `restrict,pty,command="sudo -n `+l.Bin+` serve" ssh-ed25519 `) {
		t.Errorf("authorized_keys: %q", before[files[1]])
	}

	// A client logs in as the new account, through the server half.
	conf := l.Config("vpn", 1, "SERVER_USERNAME="+lab.SetupUser, "SERVER_HELPER="+l.Bin)
	mustStart(t, conf)
	ping(t, lab.ClientNS, "198.51.100.2")
	if out, code := client(t, "-c", conf, "stop"); code != 0 {
		t.Fatalf("stop: exit %d: %s", code, out)
	}

	// Again: nothing to change, and nothing changed.
	if out := run("--apply"); !strings.Contains(out, "nothing to change") || strings.Contains(out, "[done]") {
		t.Errorf("second --apply changed something: %s", out)
	}
	for _, f := range files {
		if b, err := os.ReadFile(f); err != nil || string(b) != before[f] {
			t.Errorf("%s changed on the second run: %v %q", f, err, b)
		}
	}
	// An account whose ~/.ssh is a link to /etc: root must not follow it
	// (the account would get a file of /etc as its own).
	const trap = "vpntrap"
	if _, err := lab.Sh("useradd", "--create-home", "--shell", "/bin/sh", trap); err != nil {
		t.Fatal(err)
	}
	defer lab.Sh("userdel", "--remove", trap)
	if err := os.Symlink("/etc", "/home/"+trap+"/.ssh"); err != nil {
		t.Fatal(err)
	}
	out, err := lab.InNS(lab.ServerNS, l.Bin, "server-setup", "--account", trap, "--key", l.Identity+".pub", "--helper", l.Bin, "--apply")
	if err == nil || !strings.Contains(out, "/home/"+trap+"/.ssh (not a folder, or a link)") {
		t.Errorf("a linked ~/.ssh: %v\n%s", err, out)
	}
	if _, err := os.Stat("/etc/authorized_keys"); !os.IsNotExist(err) {
		t.Errorf("server-setup wrote through the link: /etc/authorized_keys: %v", err)
	}
	if _, err := os.Stat("/etc/sudoers.d/vpn-pppssh-" + trap); !os.IsNotExist(err) {
		t.Errorf("the sudoers rule was written although the key step failed: %v", err)
	}
	// A bad key file is refused before anything is looked at.
	bad := filepath.Join(l.Dir, "bad.pub")
	if err := os.WriteFile(bad, []byte("command=\"x\" ssh-ed25519 AAAA"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := lab.InNS(lab.ServerNS, l.Bin, "server-setup", "--account", lab.SetupUser, "--key", bad); err == nil || !strings.Contains(out, "the client's key") {
		t.Errorf("a key line with options: %v %s", err, out)
	}
}
