package routing

import (
	"errors"
	"testing"
	"time"
)

// A holder that never lets go (a process stopped with the lock) makes
// LockHost give up with ErrHostBusy after its bound, not wait for ever.
func TestLockHostIsBounded(t *testing.T) {
	dir := t.TempDir()
	unlock, err := LockHost(dir, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	done := make(chan error, 1)
	go func() {
		u, err := LockHost(dir, 200*time.Millisecond)
		if err == nil {
			u()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrHostBusy) {
			t.Errorf("second LockHost: %v, want ErrHostBusy", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("LockHost still waiting 10 s after its 200 ms bound")
	}
}
