// Package nldump retries netlink dumps that the kernel interrupted.
//
// A netlink dump (RTM_GETADDR, RTM_GETROUTE, RTM_GETLINK ... with
// NLM_F_DUMP) is answered in several messages. When the table changes
// between two of them — another link getting its addresses while this one
// lists its own — the kernel sets NLM_F_DUMP_INTR on the answer and
// github.com/vishvananda/netlink returns what it read together with
// netlink.ErrDumpInterrupted ("results may be incomplete or inconsistent").
// The answer is then unusable, but asking again is: Retry does so, a bounded
// number of times, and only for that error.
package nldump

import (
	"errors"
	"fmt"
	"time"

	"github.com/vishvananda/netlink"
)

// Attempts bounds how often Retry asks. Each interruption needs a change to
// the table during the dump, so a handful of tries is enough even when many
// links start at once.
const Attempts = 10

// maxPause bounds the wait between attempts (1 ms doubling): all ten take
// well under half a second.
const maxPause = 50 * time.Millisecond

// Retry calls list until it returns without netlink.ErrDumpInterrupted, at
// most Attempts times, and returns its last answer. Any other error is
// returned at once, unchanged. When every attempt was interrupted the error
// still matches netlink.ErrDumpInterrupted under errors.Is.
func Retry[T any](list func() (T, error)) (T, error) {
	var (
		v   T
		err error
	)
	pause := time.Millisecond
	for i := range Attempts {
		v, err = list()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return v, err
		}
		if i < Attempts-1 {
			// Whatever changes the table (another link's addresses)
			// is usually done within milliseconds: asking again at
			// once could meet it again, ten times in a row.
			time.Sleep(pause)
			pause = min(2*pause, maxPause)
		}
	}
	var zero T
	return zero, fmt.Errorf("%w (%d times in a row)", err, Attempts)
}
