//go:build linux

package firewall

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// inNetNS runs fn on a thread inside the network namespace nsFD refers to,
// or on the calling goroutine when nsFD < 0.
func inNetNS(nsFD int, fn func() error) error {
	if nsFD < 0 {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Setns(nsFD, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread() // still in its own namespace: reusable
			errc <- fmt.Errorf("entering network namespace: %w", err)
			return
		}
		// The thread stays locked, so it ends with this goroutine instead
		// of going back to the scheduler in a foreign namespace.
		errc <- fn()
	}()
	return <-errc
}
