package pollfd

import (
	"errors"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func blocking(t *testing.T, f *os.File) bool {
	t.Helper()
	flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	return flags&unix.O_NONBLOCK == 0
}

// A pipe's read end gets a deadline, its reads end when restore closes the
// duplicate, and the original is blocking again afterwards.
func TestDupPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	// What sudo hands over: a plain blocking descriptor, not one of
	// Go's poller.
	orig := os.NewFile(r.Fd(), "stdin")
	polled, restore, err := Dup(orig)
	if err != nil {
		t.Fatal(err)
	}
	if blocking(t, orig) {
		t.Error("the shared file description is still blocking while the duplicate is in use")
	}
	if err := polled.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := polled.Read(b); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past its deadline: %v", err)
	}
	if _, err := w.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := polled.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	if n, err := polled.Read(b); n != 1 || b[0] != 'x' {
		t.Fatalf("read %d %q, %v", n, b, err)
	}
	ended := make(chan error, 1)
	go func() {
		_, err := polled.Read(b)
		ended <- err
	}()
	restore()
	if err := <-ended; !errors.Is(err, os.ErrClosed) {
		t.Errorf("a read in progress at restore ended with %v, want os.ErrClosed", err)
	}
	restore() // idempotent
	if !blocking(t, orig) {
		t.Error("restore left the original non-blocking")
	}
}

// A regular file cannot be polled: Dup says so and leaves it as it was.
func TestDupRegularFile(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "plain")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, _, err := Dup(f); err == nil {
		t.Fatal("Dup of a regular file: no error")
	}
	if !blocking(t, f) {
		t.Error("a refused Dup left the file non-blocking")
	}
}
