package serve

import (
	"errors"
	"fmt"

	"github.com/vpn-pppssh/vpn-pppssh/internal/rundir"
	"github.com/vpn-pppssh/vpn-pppssh/pppssh"
)

// ErrTooManySessions is returned when every MAX_SESSIONS slot, or every
// MAX_SESSIONS_PER_ACCOUNT slot of the session's account, is taken.
var ErrTooManySessions = errors.New("too many sessions")

// slots are the two slot locks a session holds for its life.
type slots struct{ account, global *rundir.Lock }

// Release lets go of both slots.
func (s *slots) Release() {
	s.global.Release()
	s.account.Release()
}

// takeSlots takes one of the account's MAX_SESSIONS_PER_ACCOUNT slots
// (serve-uUID-slot-N), then one of the MAX_SESSIONS slots (serve-slot-N):
// lock files held with flock(2) for the life of the session. Taking a free
// lock is atomic in the kernel, so sessions arriving together can never
// exceed a cap, and a slot of a helper that died is free again at once
// (its lock went with its process). The account's slot comes first, so an
// account at its cap never holds a global slot, even for a moment, that
// another account's session could have had.
func takeSlots(dir rundir.Dir, p pppssh.Policy, uid int) (*slots, error) {
	account, err := takeSlot(dir, fmt.Sprintf("serve-u%d-slot-", uid), p.MaxSessionsPerAccount)
	switch {
	case errors.Is(err, ErrTooManySessions) && p.MaxSessionsPerAccount >= p.MaxSessions:
		// The account holds every session there is: MAX_SESSIONS is
		// what to raise.
		return nil, fmt.Errorf("%w: all MAX_SESSIONS=%d in %s are in use", ErrTooManySessions, p.MaxSessions, p.Path())
	case errors.Is(err, ErrTooManySessions):
		return nil, fmt.Errorf("%w of this account: all MAX_SESSIONS_PER_ACCOUNT=%d in %s are in use", ErrTooManySessions, p.MaxSessionsPerAccount, p.Path())
	}
	if err != nil {
		return nil, err
	}
	global, err := takeSlot(dir, "serve-slot-", p.MaxSessions)
	if errors.Is(err, ErrTooManySessions) {
		err = fmt.Errorf("%w: all MAX_SESSIONS=%d in %s are in use", ErrTooManySessions, p.MaxSessions, p.Path())
	}
	if err != nil {
		account.Release()
		return nil, err
	}
	return &slots{account: account, global: global}, nil
}

// takeSlot takes the first free lock of prefix0 .. prefix(n-1).
func takeSlot(dir rundir.Dir, prefix string, n int) (*rundir.Lock, error) {
	for i := range n {
		l, err := dir.Lock(fmt.Sprintf("%s%d", prefix, i))
		if err == nil {
			return l, nil
		}
		if !errors.Is(err, rundir.ErrRunning) {
			return nil, fmt.Errorf("taking a session slot: %w", err)
		}
	}
	return nil, ErrTooManySessions
}
