package flock

import (
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// A held lock is refused after the wait, naming the file, and taken once
// let go.
func TestWait(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	release, err := Wait(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Wait(path, 30*time.Millisecond); !errors.Is(err, ErrTimeout) {
		t.Fatalf("second Wait while held: %v, want ErrTimeout", err)
	}
	release()
	again, err := Wait(path, time.Second)
	if err != nil {
		t.Fatalf("Wait after release: %v", err)
	}
	again()
}
