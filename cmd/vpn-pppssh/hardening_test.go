package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vpn-pppssh/vpn-pppssh/internal/rundir"
)

// runIn is runCmd with the state folder and environment chosen.
func runIn(t *testing.T, dir rundir.Dir, env map[string]string, args ...string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	o := &options{stdout: &out, stderr: &out, runDir: dir, getenv: func(k string) string { return env[k] }}
	err := runWith(context.Background(), o, args)
	code := exitOK
	if err != nil {
		code = exitFailed
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
		out.WriteString(err.Error())
	}
	return out.String(), code
}

// -n is checked before any path is built from it: "../../x" must not
// reach the state file two folders up.
func TestBadLinkNameTouchesNothing(t *testing.T) {
	base := t.TempDir()
	dir := rundir.Dir(filepath.Join(base, "run", "vpn-pppssh"))
	if err := os.MkdirAll(string(dir), 0o700); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(base, "x.json")
	if err := os.WriteFile(victim, []byte(`{"name":"x"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"stop", "status", "cleanup", "start", "restart", "config"} {
		out, code := runIn(t, dir, nil, "-n", "../../x", cmd)
		if code != exitUsage || !strings.Contains(out, `link name "../../x"`) {
			t.Errorf("%s: exit %d, output %q; want exit 2 naming the name", cmd, code, out)
		}
		if _, err := os.Stat(victim); err != nil {
			t.Fatalf("%s: the file outside the state folder is gone: %v", cmd, err)
		}
		if _, err := os.Stat(filepath.Join(base, "x.pid")); err == nil {
			t.Fatalf("%s: a lock file was created outside the state folder", cmd)
		}
	}
	// A name taken from the file's name is checked the same way.
	p := filepath.Join(t.TempDir(), "a b.conf")
	if err := os.WriteFile(p, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code := runIn(t, dir, nil, "-c", p, "stop"); code != exitUsage || !strings.Contains(out, `link name "a b"`) {
		t.Errorf("name from the file: exit %d, output %q", code, out)
	}
}

// Through sudo, a flag that names a program, a folder of programs or a
// file root trusts is refused by name; -n stays allowed.
func TestDelegatedRootRefusesFlagsThatPickWhatRootRuns(t *testing.T) {
	dir := rundir.Dir(t.TempDir())
	sudo := map[string]string{"SUDO_UID": "1000", "SUDO_USER": "alice"}
	p := writeConf(t, conf)
	// The command is config, which starts nothing even where the refusal
	// is missing; the refusal comes before any command.
	for _, flag := range []string{"--pppd=/tmp/evil", "--ip-up-dir=/tmp", "--ip-down-dir=/tmp", "--config=" + p,
		"--ssh-identity=/root/.ssh/id_ed25519", "--ssh-known-hosts=/tmp/kh", "--server-pppd=/bin/sh",
		"--server-helper=/bin/sh", "--server-hostname=192.0.2.9", "--server-username=root", "--default-route=yes",
		"--server-networks=0.0.0.0/1"} {
		name, _, _ := strings.Cut(flag, "=")
		for _, env := range []map[string]string{sudo, {"DOAS_USER": "alice"}, {"PKEXEC_UID": "1000"}} {
			out, code := runIn(t, dir, env, "-n", "office", flag, "config")
			if code != exitUsage || !strings.Contains(out, "refusing "+name) || !strings.Contains(out, "/etc/vpn-pppssh/NAME.conf") {
				t.Errorf("%s with %v: exit %d, output %q", flag, env, code, out)
			}
		}
	}
	// What stays allowed: -n (here the admin's file is missing: exit 2 for
	// that reason, not for the flags) and the timers.
	out, code := runIn(t, dir, sudo, "-n", "nosuchlink", "-v", "--connect-timeout=5", "--json", "status")
	if strings.Contains(out, "refusing") || code != exitNotRunning {
		t.Errorf("allowed flags: exit %d, output %q", code, out)
	}
	// --notify-fd makes root write to and close a descriptor: only the
	// background copy, marked by its parent, may be given one through sudo,
	// and never 0-2.
	out, code = runIn(t, dir, sudo, "-n", "office", "--foreground", "--notify-fd=2", "config")
	if code != exitUsage || !strings.Contains(out, "refusing --notify-fd") {
		t.Errorf("--notify-fd through sudo: exit %d, output %q", code, out)
	}
	out, code = runIn(t, dir, nil, "-c", p, "--notify-fd=1", "config")
	if code != exitUsage || !strings.Contains(out, "--notify-fd=1: only a descriptor above 2") {
		t.Errorf("--notify-fd=1: exit %d, output %q", code, out)
	}
	child := map[string]string{"SUDO_UID": "1000", backgroundEnv: "1"}
	out, code = runIn(t, dir, child, "-n", "nosuchlink", "--notify-fd=3", "status")
	if strings.Contains(out, "refusing") || code != exitNotRunning {
		t.Errorf("the background copy's --notify-fd: exit %d, output %q", code, out)
	}
	// Root itself (no sudo, or sudo from root) may use every flag.
	for _, env := range []map[string]string{nil, {"SUDO_UID": "0"}} {
		out, code := runIn(t, dir, env, "-c", p, "--pppd=/usr/sbin/pppd", "config")
		if code != exitOK || strings.Contains(out, "refusing") {
			t.Errorf("root with %v: exit %d, output %q", env, code, out)
		}
	}
}

// The background log stays bounded however much is written to it, and
// what is written last is in the current file.
func TestLogFileStaysBounded(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "vpn.log")
	// A stand-in for fd 2: after a rotation it must point at the new file.
	stand, err := os.OpenFile(filepath.Join(dir, "old-stderr"), os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer stand.Close()
	const max = 64 << 10
	l, err := openLog(p, max, int(stand.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	line := []byte(strings.Repeat("x", 199) + "\n")
	for written := 0; written < 10<<20; written += len(line) {
		if _, err := l.Write(line); err != nil {
			t.Fatal(err)
		}
	}
	huge := bytes.Repeat([]byte("y"), 3*max)
	if n, err := l.Write(huge); err != nil || n != len(huge) {
		t.Fatalf("one write longer than the bound: %d, %v", n, err)
	}
	if _, err := l.Write([]byte("last line\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := stand.Write([]byte("panic: from fd 2\n")); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	var total int64
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(e.Name(), "vpn.log") {
			total += fi.Size()
		}
		if e.Name() != "vpn.log" && e.Name() != "vpn.log.1" && e.Name() != "old-stderr" {
			t.Errorf("unexpected file %s", e.Name())
		}
	}
	if total > 2*max+100 {
		t.Errorf("10 MiB written: the logs hold %d bytes, bound %d", total, 2*max)
	}
	cur, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(cur), "last line\npanic: from fd 2\n") {
		t.Errorf("current log does not end with the last lines and fd 2's output: %q", tail(string(cur)))
	}
	if fi, _ := os.Stat(p + ".1"); fi == nil || fi.Size() == 0 {
		t.Error("no older generation kept")
	}
	if _, err := os.Stat(p + ".2"); err == nil {
		t.Error("a third generation")
	}
}

func tail(s string) string {
	if len(s) > 80 {
		return s[len(s)-80:]
	}
	return s
}

// hostile is what a server could put in an error (its stderr, its refusal
// line) that then ends up in the state file and in main's message.
const hostile = "the server said: \x1b]0;owned\x07\x1b[2J\u009b31m\u202ered\x7f\rfake line\nsecond \x1b[8m"

var controls = []string{"\x1b", "\xc2\x9b", "\x07", "\r", "\x7f", "\u202e"}

func firstControl(s string) string {
	for _, c := range controls {
		if strings.Contains(s, c) {
			return c
		}
	}
	return ""
}

func TestStatusEscapesServerText(t *testing.T) {
	dir := rundir.Dir(t.TempDir())
	lock, err := dir.Lock("office")
	if err != nil {
		t.Fatal(err)
	}
	st := rundir.State{Name: "office", Pid: os.Getpid(), Phase: "waiting", LastError: hostile, Iface: "ppp\x1b[0"}
	if err := dir.Write(st); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"-n", "office", "status"}, {"-n", "office", "--json", "status"}} {
		out, code := runIn(t, dir, nil, args...)
		if code != exitOK || !strings.Contains(out, `last`) {
			t.Fatalf("%v: exit %d: %q", args, code, out)
		}
		if c := firstControl(out); c != "" {
			t.Errorf("%v: output holds %q: %q", args, c, out)
		}
		if !strings.Contains(out, `\x1b]0;owned`) {
			t.Errorf("%v: the escaped text is not shown: %q", args, out)
		}
	}
	// The state a dead owner left is shown too (--json prints it).
	lock.Release()
	if err := dir.Write(st); err != nil {
		t.Fatal(err)
	}
	out, code := runIn(t, dir, nil, "-n", "office", "--json", "status")
	if code != exitNotRunning || firstControl(out) != "" || !strings.Contains(out, `"phase": "dead"`) {
		t.Errorf("dead: exit %d: %q", code, out)
	}
}

func TestFatalErrorIsEscaped(t *testing.T) {
	var b bytes.Buffer
	printError(&b, errors.New(hostile))
	if c := firstControl(b.String()); c != "" {
		t.Errorf("main's message holds %q: %q", c, b.String())
	}
	if !strings.HasPrefix(b.String(), "vpn-pppssh: the server said: ") || strings.Count(b.String(), "\n") != 2 {
		t.Errorf("message: %q", b.String())
	}
}

// Root runs the local pppd: one that someone else could replace is
// refused before anything starts.
func TestRefusesPPPDOthersCouldReplace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the ownership checks apply to root")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	pppd := filepath.Join(dir, "pppd")
	if err := os.WriteFile(pppd, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Loopback, a closed port: should the check be missing, the
	// foreground start fails at once without sending anything away.
	p := writeConf(t, "SERVER_HOSTNAME=127.0.0.1\nSERVER_PORT=9\nSERVER_USERNAME=vpn\nSERVER_IFIPADDR=198.51.100.2\n"+
		"CLIENT_IFIPADDR=198.51.100.1\nPPPD="+pppd+"\nCONNECT_TIMEOUT=1\nPERSIST=no\n")
	state := rundir.Dir(t.TempDir())
	for _, args := range [][]string{{"-c", p, "start"}, {"-c", p, "--foreground", "start"}} {
		out, code := runIn(t, state, nil, args...)
		if code != exitUsage || !strings.Contains(out, "PPPD "+pppd) || !strings.Contains(out, "directory "+dir+" is writable by group or others") {
			t.Errorf("%v: exit %d: %q", args, code, out)
		}
	}
	if ents, err := os.ReadDir(string(state)); err != nil || len(ents) != 0 {
		t.Errorf("left in the state folder: %v %v", ents, err)
	}
}
