package serve

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/vpn-pppssh/vpn-pppssh/pppssh"
	"golang.org/x/sys/unix"
)

func TestRestartBudget(t *testing.T) {
	const restartLimit = 5
	now := time.Unix(1700000000, 0)
	r := restarts{limit: restartLimit, now: func() time.Time { return now }}
	for i := range restartLimit {
		if !r.take() {
			t.Fatalf("restart %d refused within the limit of %d", i+1, restartLimit)
		}
		now = now.Add(time.Second)
	}
	if r.take() {
		t.Fatalf("restart %d allowed within %v", restartLimit+1, restartWindow)
	}
	// The first restart leaves the window: one more is allowed, and the
	// refused one did not count.
	now = now.Add(restartWindow - restartLimit*time.Second + time.Second/2)
	if !r.take() {
		t.Fatal("no restart allowed once the oldest left the window")
	}
	if r.take() {
		t.Fatal("two restarts allowed where one left the window")
	}
}

func TestNoRestarts(t *testing.T) {
	r := restarts{limit: 0}
	if r.take() {
		t.Error("a restart allowed with PPPD_RESTARTS=0")
	}
}

func TestKilledBySignal(t *testing.T) {
	killed := exec.Command("sleep", "60")
	if err := killed.Start(); err != nil {
		t.Fatal(err)
	}
	if err := killed.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if sig, ok := killedBySignal(killed.Wait()); !ok || sig != syscall.SIGKILL.String() {
		t.Errorf("a process killed by SIGKILL: %q, %v", sig, ok)
	}
	// pppd's own ends are exit codes: 16, the client hung up; 5, SIGTERM caught.
	err := exec.Command("sh", "-c", "exit 16").Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("exit 16: %v", err)
	}
	if sig, ok := killedBySignal(err); ok {
		t.Errorf("exit status 16 taken for a death by %s", sig)
	}
	if _, ok := killedBySignal(errors.New("pppd negotiated other addresses")); ok {
		t.Error("a refusal taken for a death by a signal")
	}
	if _, ok := killedBySignal(nil); ok {
		t.Error("a clean exit taken for a death by a signal")
	}
}

// resetLine leaves a terminal in its own discipline as it is (the host
// kernel has no PPP discipline to set), and names the problem on what is
// no terminal.
func TestResetLine(t *testing.T) {
	master, slave, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	defer slave.Close()
	if err := resetLine(slave); err != nil {
		t.Fatalf("resetLine on a terminal: %v", err)
	}
	d, err := unix.IoctlGetInt(int(slave.Fd()), unix.TIOCGETD)
	if err != nil || d != nTTY {
		t.Errorf("line discipline after resetLine: %d, %v; want %d", d, err, nTTY)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if err := resetLine(r); err == nil {
		t.Error("resetLine on a pipe: no error")
	}
}

func TestRemovePidFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	unit := write("ppp3.pid", "4242\n")
	link := write("ppp-vpn-pppssh-in-198.51.100.1.pid", "4242\nppp3\n")
	other := write("ppp4.pid", "4243\n")
	if err := removePidFiles(dir, 4242, "ppp3", "vpn-pppssh-in-198.51.100.1"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{unit, link} {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s left behind: %v", p, err)
		}
	}
	// Another pppd's files stay: a new pppd may have written the same name.
	write("ppp3.pid", "5000\n")
	if err := removePidFiles(dir, 4242, "ppp3", "x"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{unit, other} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s removed, though it names another pppd: %v", p, err)
		}
	}
	// A pppd killed before it had an interface: only the linkname's.
	none := write("ppp-none.pid", "4242\n")
	if err := removePidFiles(dir, 4242, "", "none"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(none); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s left behind: %v", none, err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".pid")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a .pid file made or kept: %v", err)
	}
}

// restartable reads the policy again: what the admin changed since the
// session began applies to the restart, and each restart is counted.
func TestRestartableReadsThePolicyAgain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "server.conf")
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	req := pppssh.Request{Version: 1, Link: "office", IPParam: "vpn", Local: netip.MustParseAddr("198.51.100.2"),
		Peer: netip.MustParseAddr("198.51.100.1"), Masquerade: true, Forward: true}
	write(labPolicy + "PPPD_RESTARTS=1\n")
	var p pppssh.Policy
	var budget restarts
	if err := restartable(&p, path, req, &budget); err != nil {
		t.Fatalf("first restart: %v", err)
	}
	if p.PPPD != "/bin/true" {
		t.Errorf("the policy read again says PPPD %q", p.PPPD)
	}
	if err := restartable(&p, path, req, &budget); err == nil || !strings.Contains(err.Error(), "PPPD_RESTARTS=1") {
		t.Errorf("second restart with PPPD_RESTARTS=1: %v", err)
	}
	budget = restarts{}
	write("ALLOW_PEERS=198.51.100.0/24\nALLOW_FORWARDING=yes\n") // masquerade no longer allowed
	if err := restartable(&p, path, req, &budget); err == nil || !strings.Contains(err.Error(), "ALLOW_MASQUERADE") {
		t.Errorf("a restart the policy no longer allows: %v", err)
	}
	write("PPPD_RESTARTS=lots\n")
	if err := restartable(&p, path, req, &budget); err == nil || !strings.Contains(err.Error(), "PPPD_RESTARTS") {
		t.Errorf("a restart under a broken policy: %v", err)
	}
}
