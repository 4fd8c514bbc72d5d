package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vpn-pppssh/vpn-pppssh/internal/rundir"
	"github.com/vpn-pppssh/vpn-pppssh/internal/version"
)

// runSplit runs the command line with stdout and stderr apart, state in
// run and configuration files in conf.
func runSplit(t *testing.T, run rundir.Dir, conf string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	o := &options{stdout: &out, stderr: &errOut, runDir: run, confDir: conf, getenv: func(string) string { return "" }}
	err := runWith(context.Background(), o, args)
	if err != nil {
		code = exitFailed
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
		errOut.WriteString(err.Error())
	}
	return out.String(), errOut.String(), code
}

func TestHelpGoesToStdoutWithCommandsAndExitCodes(t *testing.T) {
	out, errOut, code := runSplit(t, rundir.Dir(t.TempDir()), t.TempDir(), "--help")
	if code != exitOK || errOut != "" {
		t.Fatalf("--help: exit %d, stderr %q", code, errOut)
	}
	for _, want := range []string{"commands:\n", "  status    ", "exit codes:\n", "  6  the server's host key", "--server-hostname", "--version"} {
		if !strings.Contains(out, want) {
			t.Errorf("--help lacks %q:\n%s", want, out)
		}
	}
}

func TestVersion(t *testing.T) {
	out, _, code := runSplit(t, rundir.Dir(t.TempDir()), t.TempDir(), "--version")
	if code != exitOK || !strings.HasPrefix(out, "vpn-pppssh "+version.String()+", go") || !strings.Contains(out, "helper protocol 1") {
		t.Fatalf("--version: exit %d, %q", code, out)
	}
}

func TestStatusWithoutANameListsEveryLink(t *testing.T) {
	run := rundir.Dir(t.TempDir())
	conf := t.TempDir()
	for _, f := range []string{"office.conf", "server.conf", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(conf, f), []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// home: running, up (this test holds its lock); lab: dead, left state.
	l, err := run.Lock("home")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	for _, s := range []rundir.State{
		{Name: "home", Phase: "up", Mode: "ppp", Iface: "ppp0", Local: "198.51.100.1", Remote: "198.51.100.2", Server: "vpn@192.0.2.2:22"},
		{Name: "lab", Phase: "waiting", LastError: "connecting to 192.0.2.9:22: \x1b]0;owned\x07 refused"},
	} {
		if err := run.Write(s); err != nil {
			t.Fatal(err)
		}
	}
	out, errOut, code := runSplit(t, run, conf, "status")
	if code != exitNotRunning {
		t.Fatalf("status of three links, two not running: exit %d (%s%s), want 3", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "LINK ") {
		t.Fatalf("want a header and one line per link (home, lab, office):\n%s", out)
	}
	for i, re := range []string{
		`^home\s+up \(pid \d+\)\s+ppp\s+ppp0\s+198\.51\.100\.1 -> 198\.51\.100\.2\s+vpn@192\.0\.2\.2:22\s`,
		`^lab\s+dead\s.*connecting to 192\.0\.2\.9:22: \\x1b`,
		`^office\s+stopped\s`,
	} {
		if !regexp.MustCompile(re).MatchString(lines[i+1]) {
			t.Errorf("line %d %q does not match %s", i+1, lines[i+1], re)
		}
	}
	if strings.Contains(out, "server") || strings.Contains(out, "\x1b") {
		t.Errorf("the policy file listed as a link, or an escape reached the terminal:\n%q", out)
	}
	out, _, code = runSplit(t, run, conf, "--json", "status")
	var rs []statusReport
	if err := json.Unmarshal([]byte(out), &rs); err != nil || code != exitNotRunning || len(rs) != 3 || !rs[0].Running || rs[0].Name != "home" {
		t.Fatalf("--json status: exit %d, %v, %+v", code, err, rs)
	}
	// With -n, the one link as before.
	if _, _, code := runSplit(t, run, conf, "-n", "home", "status"); code != exitOK {
		t.Fatalf("status -n home: exit %d, want 0", code)
	}
}

func TestStatusWithoutAnyLink(t *testing.T) {
	out, _, code := runSplit(t, rundir.Dir(filepath.Join(t.TempDir(), "none")), t.TempDir(), "status")
	if code != exitNotRunning || !strings.HasPrefix(out, "no links:") {
		t.Fatalf("status with nothing configured: exit %d, %q", code, out)
	}
}

// server-setup writes sudoers and authorized_keys: an account that a
// sudo rule for this program lets in must not run it.
func TestServerSetupRefusedThroughSudo(t *testing.T) {
	out, code := runIn(t, rundir.Dir(t.TempDir()), map[string]string{"SUDO_UID": "1000"},
		"server-setup", "--apply", "--account", "root", "--key", "/nonexistent.pub", "--helper", "/tmp/x")
	if code != exitUsage || !strings.Contains(out, "server-setup is for root itself, not through sudo (SUDO_UID=1000)") {
		t.Fatalf("exit %d: %s", code, out)
	}
}

// redial signals the running link (here: this test, which holds its lock),
// and with --via only when the link's SSH connection leaves from there.
func TestRedialOnlyTheLinkThatLeftFromTheAddress(t *testing.T) {
	run := rundir.Dir(t.TempDir())
	conf := t.TempDir()
	if err := os.WriteFile(filepath.Join(conf, "office.conf"), []byte("SERVER_HOSTNAME=192.0.2.2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, code := runSplit(t, run, conf, "-n", "office", "redial"); code != exitNotRunning {
		t.Fatalf("redial of a link that is not running: exit %d, want 3", code)
	}
	l, err := run.Lock("office")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if err := run.Write(rundir.State{Name: "office", Phase: "up", Via: "198.19.1.2"}); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := runSplit(t, run, conf, "-n", "office", "redial", "--via", "uplink0"); code != exitUsage || !strings.Contains(errOut, `--via "uplink0"`) {
		t.Fatalf("--via that is no address: exit %d, %q", code, errOut)
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	out, errOut, code := runSplit(t, run, conf, "-n", "office", "redial", "--via", "198.19.2.2")
	if code != exitOK || !strings.Contains(out, "leaves from 198.19.1.2, not 198.19.2.2: not redialled") {
		t.Fatalf("redial --via another address: exit %d, %q %q", code, out, errOut)
	}
	out, errOut, code = runSplit(t, run, conf, "-n", "office", "redial", "--via", "::ffff:198.19.1.2")
	if code != exitOK || !strings.Contains(out, "is dialling again") {
		t.Fatalf("redial --via its address: exit %d, %q %q", code, out, errOut)
	}
	select {
	case <-hup:
	case <-time.After(10 * time.Second):
		t.Fatal("redial --via the link's address sent no SIGHUP to the link's process")
	}
}
