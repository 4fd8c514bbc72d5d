package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vpn-pppssh/vpn-pppssh/internal/rundir"
)

// runCmd runs the command line with captured output and a private state dir.
func runCmd(t *testing.T, args ...string) (string, int) {
	t.Helper()
	return runIn(t, rundir.Dir(t.TempDir()), nil, args...)
}

func writeConf(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "office.conf")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const conf = "SERVER_HOSTNAME=192.0.2.2\nSERVER_USERNAME=vpn\nSERVER_IFIPADDR=198.51.100.2\nCLIENT_IFIPADDR=198.51.100.1\n"

func TestConfigPrintsEffectiveValues(t *testing.T) {
	p := writeConf(t, conf)
	out, code := runCmd(t, "-c", p, "--server-port", "2222", "config")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	for _, want := range []string{"# link office\n", "SERVER_HOSTNAME=192.0.2.2\n", "SERVER_PORT=2222\n", "PPPD=/usr/sbin/pppd\n", "SSH_IDENTITY=''\n", "CONNECT_TIMEOUT=30\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("config output lacks %q:\n%s", want, out)
		}
	}
}

func TestUsageAndConfigErrorsExit2(t *testing.T) {
	p := writeConf(t, conf)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-c", p}, "want one command"},
		{[]string{"--no-such-flag", "status"}, "unknown flag: --no-such-flag (vpn-pppssh --help"},
		{[]string{"-c", p, "frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"-c", p, "--server-port", "x", "config"}, `--server-port: "x" is not a port number`},
		{[]string{"-c", filepath.Join(t.TempDir(), "missing.conf"), "start"}, "no such file"},
		{[]string{"-c", writeConf(t, "SERVER_HOSTNAME=a\n"), "start"}, "missing required key"},
		{[]string{"-c", writeConf(t, conf+"SERVER_PPPD=/x;reboot\n"), "start"}, "office.conf:5: SERVER_PPPD: shell syntax"},
	} {
		out, code := runCmd(t, tc.args...)
		if code != exitUsage || !strings.Contains(out, tc.want) {
			t.Errorf("%v: exit %d, output %q; want exit 2 and %q", tc.args, code, out, tc.want)
		}
	}
}

func TestStatusAndStopWhenNotRunning(t *testing.T) {
	p := writeConf(t, conf)
	if out, code := runCmd(t, "-c", p, "status"); code != exitNotRunning || !strings.Contains(out, "not running") {
		t.Errorf("status: exit %d: %s", code, out)
	}
	if out, code := runCmd(t, "-c", p, "stop"); code != exitOK || !strings.Contains(out, "not running") {
		t.Errorf("stop: exit %d: %s", code, out)
	}
}

func TestChildArgsRepeatFlags(t *testing.T) {
	o := &options{stderr: &bytes.Buffer{}}
	o.flags = newFlagSet(o)
	if err := o.flags.Parse([]string{"-c", "/etc/x.conf", "--server-port=2222", "-v", "restart"}); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(childArgs(o.flags), " ")
	want := "--config=/etc/x.conf --server-port=2222 --verbose=true --foreground --notify-fd=3 start"
	if got != want {
		t.Errorf("childArgs:\n got %s\nwant %s", got, want)
	}
}

// A broken file must not keep a running link from being stopped.
func TestStopWorksWithABrokenFile(t *testing.T) {
	p := writeConf(t, conf+"SERVER_PPPD=/x;reboot\n")
	out, code := runCmd(t, "-c", p, "stop")
	if code != exitOK || !strings.Contains(out, "warning") || !strings.Contains(out, "link office is not running") {
		t.Errorf("stop: exit %d: %s", code, out)
	}
}

func TestRotateLog(t *testing.T) {
	p := filepath.Join(t.TempDir(), "vpn.log")
	if err := os.WriteFile(p, make([]byte, maxLog+1), 0o600); err != nil {
		t.Fatal(err)
	}
	rotateLog(p)
	if _, err := os.Stat(p + ".1"); err != nil {
		t.Errorf("big log not moved aside: %v", err)
	}
	if err := os.WriteFile(p, []byte("small"), 0o600); err != nil {
		t.Fatal(err)
	}
	rotateLog(p)
	if b, err := os.ReadFile(p); err != nil || string(b) != "small" {
		t.Errorf("small log moved")
	}
}

// What config prints reads back as the same configuration, a proxy
// command with single quotes included.
func TestConfigOutputReadsBack(t *testing.T) {
	p := writeConf(t, conf+"SSH_PROXY_COMMAND=\"sh -c 'exec nc %h %p'\"\nSERVER_NETWORKS='203.0.113.0/24 198.18.0.0/24'\n")
	out, code := runCmd(t, "-c", p, "config")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	again := writeConf(t, out)
	out2, code := runCmd(t, "-c", again, "config")
	if code != 0 || out2 != out {
		t.Fatalf("config of config's output: exit %d\n%s\nwant\n%s", code, out2, out)
	}
	if !strings.Contains(out, `SSH_PROXY_COMMAND="sh -c 'exec nc %h %p'"`) {
		t.Errorf("proxy command printed as %q", out)
	}
}
