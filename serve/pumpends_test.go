package serve

import (
	"errors"
	"log/slog"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// blockingPipe is a pipe whose ends block, as sshd hands a session's
// stdin and stdout over (os.Pipe's ends are in the poller already).
func blockingPipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	r, w = os.NewFile(uintptr(p[0]), "stdin"), os.NewFile(uintptr(p[1]), "stdout")
	t.Cleanup(func() { r.Close(); w.Close() })
	if err := r.SetReadDeadline(time.Now()); !errors.Is(err, os.ErrNoDeadline) {
		t.Fatalf("the pipe is in the poller already (%v): the test cannot tell", err)
	}
	return r, w
}

func nonblocking(t *testing.T, f *os.File) bool {
	t.Helper()
	flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	return flags&unix.O_NONBLOCK != 0
}

// TestPumpEndsWaitInThePoller: the tun pump reads and writes the session
// through the poller (a read deadline works only there, and a read that
// waits ends when restore closes the duplicate); restore puts the pipes
// back blocking, for whatever reads them after.
func TestPumpEndsWaitInThePoller(t *testing.T) {
	r, w := blockingPipe(t)
	in, out, restore := pumpEnds(Options{Stdin: r, Stdout: w}, slog.New(slog.DiscardHandler))
	pin, ok1 := in.(*os.File)
	pout, ok2 := out.(*os.File)
	if !ok1 || !ok2 || pin == r || pout == w {
		t.Fatalf("pumpEnds gave the session's own ends back: %T, %T", in, out)
	}
	if err := pin.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
		t.Fatalf("the stdin the pump reads is not in the poller: %v", err)
	}
	if _, err := pin.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past the deadline: %v", err)
	}
	if err := pout.SetWriteDeadline(time.Time{}); err != nil {
		t.Fatalf("the stdout the pump writes is not in the poller: %v", err)
	}
	pin.SetReadDeadline(time.Time{})
	got := make(chan error, 1)
	go func() {
		_, err := pin.Read(make([]byte, 1))
		got <- err
	}()
	restore()
	restore() // idempotent
	select {
	case err := <-got:
		if err == nil {
			t.Error("a waiting read returned data after restore")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("restore did not end a read that waited")
	}
	if nonblocking(t, r) || nonblocking(t, w) {
		t.Error("restore left the session's pipes non-blocking")
	}
}
