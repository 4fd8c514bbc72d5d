package filewatch

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// replace writes content to path the way the link's state file is
// written: a temporary file renamed into place.
func replace(t *testing.T, path, content string) {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Error(err)
		return
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Error(err)
	}
}

// Until reads the file once at the start and once per change of it, not
// for changes of other files in the directory, and returns once ok holds.
func TestUntilReadsOnChangesOfItsFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "link.json")
	replace(t, path, "down")
	calls := 0
	var seen []string
	started := make(chan struct{})
	wrote := make(chan struct{})
	returned := make(chan struct{})
	go func() {
		defer close(wrote)
		select {
		case <-started:
		case <-returned: // Until gave up before its first read
			return
		}
		for range 3 {
			replace(t, filepath.Join(dir, "other.json"), "up")
		}
		replace(t, path, "up")
	}()
	ok, err := Until(path, 30*time.Second, func(b []byte) bool {
		calls++
		seen = append(seen, string(b))
		if calls == 1 {
			close(started)
		}
		return string(b) == "up"
	})
	close(returned)
	<-wrote
	if err != nil || !ok {
		t.Fatalf("Until = %v, %v", ok, err)
	}
	// The first read, then the rename into place. The other file's three
	// renames and the temporary files' writes are not reads.
	if calls != 2 || seen[0] != "down" || seen[1] != "up" {
		t.Errorf("ok was called %d times with %q, want \"down\" then \"up\"", calls, seen)
	}
}

func TestUntilTimesOut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.json")
	var got []byte
	begin := time.Now()
	ok, err := Until(path, 100*time.Millisecond, func(b []byte) bool { got = b; return false })
	if err != nil || ok {
		t.Fatalf("Until on a file that never says it = %v, %v", ok, err)
	}
	if got != nil {
		t.Errorf("a missing file read as %q, want nil", got)
	}
	if waited := time.Since(begin); waited < 100*time.Millisecond {
		t.Errorf("gave up after %v, before its 100 ms", waited)
	}
}

func TestUntilNoDirectory(t *testing.T) {
	_, err := Until(filepath.Join(t.TempDir(), "no", "such.json"), time.Second, func([]byte) bool { return false })
	if err == nil {
		t.Fatal("Until on a missing directory: no error")
	}
}

// A directory removed under the watch ends it with an error, not a wait
// until the deadline.
func TestUntilDirectoryRemoved(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	removed := make(chan error, 1)
	first := true
	ok, err := Until(filepath.Join(dir, "link.json"), 30*time.Second, func([]byte) bool {
		if first {
			first = false
			go func() { removed <- os.Remove(dir) }()
		}
		return false
	})
	if rerr := <-removed; rerr != nil {
		t.Fatal(rerr)
	}
	if ok || err == nil {
		t.Fatalf("Until after its directory went = %v, %v; want an error", ok, err)
	}
}
