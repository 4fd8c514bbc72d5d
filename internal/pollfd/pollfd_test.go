package pollfd

import (
	"errors"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func nonblocking(t *testing.T, fd uintptr) bool {
	t.Helper()
	flags, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	return flags&unix.O_NONBLOCK != 0
}

// plainPipe is a pipe as sudo hands one over: blocking descriptors that
// Go's poller does not serve, each owned by one os.File.
func plainPipe(t *testing.T, flags int) (r, w *os.File) {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|flags); err != nil {
		t.Fatal(err)
	}
	r, w = os.NewFile(uintptr(p[0]), "stdin"), os.NewFile(uintptr(p[1]), "pipe-w")
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

// A pipe's read end gets a deadline, its reads end when restore closes the
// duplicate, and the original is blocking again afterwards.
func TestDupPipe(t *testing.T) {
	orig, w := plainPipe(t, 0)
	polled, restore, err := Dup(orig)
	if err != nil {
		t.Fatal(err)
	}
	if !nonblocking(t, orig.Fd()) {
		t.Error("the shared file description is still blocking while the duplicate is in use")
	}
	if flags, err := unix.FcntlInt(polled.Fd(), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("the duplicate is not close-on-exec (flags %#x, %v): programs started meanwhile inherit it", flags, err)
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
	if nonblocking(t, orig.Fd()) {
		t.Error("restore left the original non-blocking")
	}
}

// A description that was non-blocking before stays so.
func TestDupKeepsNonblocking(t *testing.T) {
	orig, _ := plainPipe(t, unix.O_NONBLOCK)
	_, restore, err := Dup(orig)
	if err != nil {
		t.Fatal(err)
	}
	restore()
	if !nonblocking(t, orig.Fd()) {
		t.Error("restore made a non-blocking description blocking")
	}
}

// A regular file and /dev/null cannot be polled: Dup says so and leaves
// them as they were.
func TestDupRefusesWhatCannotBePolled(t *testing.T) {
	plain, err := os.CreateTemp(t.TempDir(), "plain")
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	null, err := os.OpenFile(os.DevNull, os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	for _, f := range []*os.File{plain, null} {
		if _, _, err := Dup(f); err == nil {
			t.Errorf("Dup of %s: no error", f.Name())
		}
		if nonblocking(t, f.Fd()) {
			t.Errorf("a refused Dup left %s non-blocking", f.Name())
		}
	}
	// Nor the other way: a non-blocking one stays non-blocking.
	nb, err := os.OpenFile(plain.Name(), os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer nb.Close()
	if _, _, err := Dup(nb); err == nil {
		t.Error("Dup of a regular file opened O_NONBLOCK: no error")
	}
	if !nonblocking(t, nb.Fd()) {
		t.Error("a refused Dup made a non-blocking file blocking")
	}
}
