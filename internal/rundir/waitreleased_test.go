package rundir

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

// Once WaitReleased says the lock is free, Lock must succeed: the shared
// lock it waited with must not be in the way.
func TestLockRightAfterWaitReleased(t *testing.T) {
	for i := range 20 {
		d := Dir(t.TempDir())
		f, err := os.OpenFile(filepath.Join(string(d), "x.pid"), os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
			t.Fatal(err)
		}
		// The holder is a process that inherited the locked descriptor.
		holder := exec.Command("sleep", "0.05")
		holder.ExtraFiles = []*os.File{f}
		if err := holder.Start(); err != nil {
			t.Fatal(err)
		}
		f.Close()
		if !d.WaitReleased("x", 5*time.Second) {
			t.Fatal("not released")
		}
		l, err := d.Lock("x")
		if err != nil {
			t.Fatalf("round %d: Lock after WaitReleased: %v", i, err)
		}
		l.Release()
		holder.Wait()
	}
}

// A WaitReleased that gives up leaves nothing behind: no goroutine blocked
// on the lock, no open descriptor, and once the holder goes the lock can
// be taken at once.
func TestWaitReleasedTimeoutLeavesNothing(t *testing.T) {
	d := Dir(t.TempDir())
	f, err := os.OpenFile(filepath.Join(string(d), "x.pid"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	fds := openFDs(t)
	if d.WaitReleased("x", 50*time.Millisecond) {
		t.Fatal("released while held")
	}
	if err := goleak.Find(); err != nil {
		t.Errorf("WaitReleased left a goroutine: %v", err)
	}
	if n := openFDs(t); n != fds {
		t.Errorf("open descriptors: %d before WaitReleased, %d after", fds, n)
	}
	f.Close() // the holder goes
	l, err := d.Lock("x")
	if err != nil {
		t.Fatalf("Lock after the holder went: %v", err)
	}
	l.Release()
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("counting descriptors: %v", err)
	}
	return len(ents)
}
