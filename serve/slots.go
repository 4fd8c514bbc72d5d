package serve

import (
	"errors"
	"fmt"

	"github.com/vpn-pppssh/vpn-pppssh/internal/rundir"
	"github.com/vpn-pppssh/vpn-pppssh/pppssh"
)

// ErrTooManySessions is returned when every MAX_SESSIONS slot is taken.
var ErrTooManySessions = errors.New("too many sessions")

// takeSlot takes one of the policy's MAX_SESSIONS slots: a lock file
// serve-slot-N held with flock(2) for the life of the session. Taking a
// free lock is atomic in the kernel, so sessions arriving together can
// never exceed the cap, and a slot of a helper that died is free again at
// once (its lock went with its process).
func takeSlot(dir rundir.Dir, p pppssh.Policy) (*rundir.Lock, error) {
	for i := range p.MaxSessions {
		l, err := dir.Lock(fmt.Sprintf("serve-slot-%d", i))
		if err == nil {
			return l, nil
		}
		if !errors.Is(err, rundir.ErrRunning) {
			return nil, fmt.Errorf("taking a session slot: %w", err)
		}
	}
	return nil, fmt.Errorf("%w: all MAX_SESSIONS=%d in %s are in use", ErrTooManySessions, p.MaxSessions, p.Path())
}
