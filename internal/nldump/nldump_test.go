package nldump

import (
	"errors"
	"fmt"
	"testing"

	"github.com/vishvananda/netlink"
)

// fakeDump answers like netlink.AddrList: interrupted the first
// interrupted times (with partial results, as the library returns them),
// then the full answer.
type fakeDump struct {
	interrupted int
	calls       int
	err         error // returned instead once not interrupted, if set
}

func (f *fakeDump) list() ([]string, error) {
	f.calls++
	if f.calls <= f.interrupted {
		return []string{"partial"}, fmt.Errorf("listing: %w", netlink.ErrDumpInterrupted)
	}
	if f.err != nil {
		return nil, f.err
	}
	return []string{"a", "b"}, nil
}

func TestRetryAfterTwoInterruptions(t *testing.T) {
	f := &fakeDump{interrupted: 2}
	got, err := Retry(f.list)
	if err != nil {
		t.Fatalf("Retry: %v", err)
	}
	if len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Errorf("got %v, want the third, complete answer [a b]", got)
	}
	if f.calls != 3 {
		t.Errorf("list called %d times, want 3", f.calls)
	}
}

func TestRetryIsBounded(t *testing.T) {
	f := &fakeDump{interrupted: 1 << 30}
	got, err := Retry(f.list)
	if !errors.Is(err, netlink.ErrDumpInterrupted) {
		t.Fatalf("got %v, want ErrDumpInterrupted", err)
	}
	if got != nil {
		t.Errorf("an interrupted dump's partial answer was returned: %v", got)
	}
	if f.calls != Attempts {
		t.Errorf("list called %d times, want %d", f.calls, Attempts)
	}
}

func TestRetryReturnsOtherErrorsAtOnce(t *testing.T) {
	boom := errors.New("no such device")
	f := &fakeDump{err: boom}
	if _, err := Retry(f.list); err != boom {
		t.Errorf("got %v, want the error itself, unwrapped", err)
	}
	if f.calls != 1 {
		t.Errorf("list called %d times for an error that is no interruption, want 1", f.calls)
	}
}
