// Package flock takes an exclusive flock(2) on a lock file, waiting a
// bounded time: a holder that is stopped (a root process suspended with
// Ctrl-Z) must not hang every other process for ever. The routing
// package's host lock, the DNS file backend's lock and iptables' own
// xtables lock are all taken through it.
package flock

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// ErrTimeout is wrapped by Wait's error when the lock stayed held.
var ErrTimeout = errors.New("held by another process")

// poll is how often a held lock is tried again.
const poll = 10 * time.Millisecond

// Wait opens path (created 0600 if missing, never through a symbolic
// link) and takes an exclusive lock on it within wait. It returns the
// function that lets go of the lock; the error names the path.
func Wait(path string, wait time.Duration) (release func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	deadline := time.Now().Add(wait)
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if !time.Now().Before(deadline) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w for more than %v", path, ErrTimeout, wait)
		}
		time.Sleep(poll)
	}
}
