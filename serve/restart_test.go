package serve

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
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
