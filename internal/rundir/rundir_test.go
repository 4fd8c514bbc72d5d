package rundir

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLockOwnerRelease(t *testing.T) {
	d := Dir(filepath.Join(t.TempDir(), "run"))
	if pid, err := d.Owner("vpn"); pid != 0 || err != nil {
		t.Fatalf("owner before lock: %d %v", pid, err)
	}
	l, err := d.Lock("vpn")
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(string(d)); fi.Mode().Perm() != 0o700 {
		t.Errorf("state dir mode %v, want 0700", fi.Mode().Perm())
	}
	if pid, err := d.Owner("vpn"); pid != os.Getpid() || err != nil {
		t.Errorf("owner = %d %v, want %d", pid, err, os.Getpid())
	}
	if _, err := d.Lock("vpn"); !errors.Is(err, ErrRunning) {
		t.Errorf("second lock: %v, want ErrRunning", err)
	}
	if other, err := d.Lock("other"); err != nil {
		t.Errorf("another link's lock: %v", err)
	} else {
		other.Release()
	}
	released := make(chan bool)
	go func() { released <- d.WaitReleased("vpn", 10*time.Second) }()
	l.Release()
	if !<-released {
		t.Error("WaitReleased did not see the release")
	}
	if pid, _ := d.Owner("vpn"); pid != 0 {
		t.Errorf("owner after release: %d", pid)
	}
	if _, err := os.Stat(filepath.Join(string(d), "vpn.pid")); !os.IsNotExist(err) {
		t.Errorf("lock file left behind: %v", err)
	}
}

func TestWaitReleasedTimesOut(t *testing.T) {
	d := Dir(t.TempDir())
	l, err := d.Lock("vpn")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if d.WaitReleased("vpn", 50*time.Millisecond) {
		t.Error("reported released while held")
	}
}

// TestStateBeforeModes: a state file written before the modes names its
// pppd as pppd_pid; read now, that is a ppp link's carrier process, so
// that cleanup after an upgrade still finds the pppd a dead process left.
func TestStateBeforeModes(t *testing.T) {
	d := Dir(t.TempDir())
	old := `{"name":"vpn","pid":42,"phase":"up","iface":"ppp0","pppd_pid":3777,"redials":0}`
	if err := os.WriteFile(filepath.Join(string(d), "vpn.json"), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := d.Read("vpn")
	if err != nil {
		t.Fatal(err)
	}
	if got.CarrierPid != 3777 || got.Mode != "ppp" {
		t.Errorf("an old state file read as carrier pid %d, mode %q; want 3777, ppp", got.CarrierPid, got.Mode)
	}
}

func TestStateRoundTrip(t *testing.T) {
	d := Dir(t.TempDir())
	want := State{Name: "vpn", Pid: 42, Phase: "up", Iface: "ppp0", Local: "198.51.100.1", Remote: "198.51.100.2",
		Mode: "ppp", CarrierPid: 4242, Started: time.Unix(1700000000, 0).UTC(), UpSince: time.Unix(1700000001, 0).UTC()}
	if err := d.Write(want); err != nil {
		t.Fatal(err)
	}
	got, err := d.Read("vpn")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if err := d.Remove("vpn"); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove("vpn"); err != nil {
		t.Errorf("second remove: %v", err)
	}
	if _, err := d.Read("vpn"); !os.IsNotExist(err) {
		t.Errorf("read after remove: %v", err)
	}
}

// Every path is built from a name: one that is not a link name is refused
// before any file is touched, so "../x" never reaches outside the folder.
func TestRefusesNamesThatAreNotLinkNames(t *testing.T) {
	base := t.TempDir()
	d := Dir(filepath.Join(base, "run", "vpn-pppssh"))
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(base, "x.json")
	if err := os.WriteFile(victim, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"../../x", "..", ".", "", "a/b", ".hidden", "-x", "x\n", "a234567890123456789012345678901234"} {
		if ValidName(name) {
			t.Errorf("ValidName(%q) = true", name)
		}
		if err := d.Remove(name); !errors.Is(err, ErrBadName) {
			t.Errorf("Remove(%q): %v, want ErrBadName", name, err)
		}
		if _, err := d.Read(name); !errors.Is(err, ErrBadName) {
			t.Errorf("Read(%q): %v, want ErrBadName", name, err)
		}
		if err := d.Write(State{Name: name}); !errors.Is(err, ErrBadName) {
			t.Errorf("Write(%q): %v, want ErrBadName", name, err)
		}
		if _, err := d.Owner(name); !errors.Is(err, ErrBadName) {
			t.Errorf("Owner(%q): %v, want ErrBadName", name, err)
		}
		if l, err := d.Lock(name); !errors.Is(err, ErrBadName) {
			t.Errorf("Lock(%q): %v, want ErrBadName", name, err)
			if l != nil {
				l.Release()
			}
		}
		if _, err := d.LogPath(name); !errors.Is(err, ErrBadName) {
			t.Errorf("LogPath(%q): %v, want ErrBadName", name, err)
		}
	}
	if _, err := os.Stat(victim); err != nil {
		t.Errorf("a file outside the folder was removed: %v", err)
	}
	for _, name := range []string{"vpn", "office-2", "a.b_c", "serve-198.51.100.2", "a2345678901234567890123456789012"} {
		if !ValidName(name) {
			t.Errorf("ValidName(%q) = false", name)
		}
	}
}

func TestNamesListsLocksAndStateOnce(t *testing.T) {
	d := Dir(t.TempDir())
	for _, f := range []string{"b.pid", "b.json", "a.json", "c.log", "d.json.tmp", ".x.pid", "server.conf"} {
		if err := os.WriteFile(filepath.Join(string(d), f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got, err := d.Names()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "a,b" {
		t.Fatalf("Names() = %q, want [a b]", got)
	}
	if got, err := Dir(filepath.Join(string(d), "missing")).Names(); err != nil || len(got) != 0 {
		t.Fatalf("a missing directory: %q, %v", got, err)
	}
}
