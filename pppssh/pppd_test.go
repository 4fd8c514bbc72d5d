package pppssh

import (
	"errors"
	"os"
	"testing"
)

// TestHangupErrorNotLost: the pty master's close error reaches closePTY
// even when hangup ran (and its result was ignored) first.
func TestHangupErrorNotLost(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r.Close() // closing it again fails: the error the test wants kept
	slave, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	p := &pppdProc{master: r, slave: slave}
	first := p.hangup()
	if !errors.Is(first, os.ErrClosed) {
		t.Fatalf("hangup = %v, want the close error", first)
	}
	if err := p.closePTY(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("closePTY after hangup = %v, lost the master's close error", err)
	}
}
