package rootfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the check applies to root")
	}
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for mode, want := range map[os.FileMode]string{0o600: "", 0o644: "", 0o620: "writable by group", 0o602: "writable by group or others"} {
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		err = Check(fi)
		if (want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), want) {
			t.Errorf("mode %04o: %v", mode, err)
		}
	}
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(fi); err == nil || !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Errorf("other owner: %v", err)
	}
}

func TestCheckPath(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the check applies to root")
	}
	base := t.TempDir()
	mk := func(rel string, mode os.FileMode) string {
		t.Helper()
		p := filepath.Join(base, rel)
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	file := func(p string) string {
		t.Helper()
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	link := func(target, p string) string {
		t.Helper()
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := file(filepath.Join(mk("ok", 0o755), "f"))
	gw := file(filepath.Join(mk("gw", 0o775), "f"))
	sticky := mk("sticky", 0o777|os.ModeSticky)
	inSticky := file(filepath.Join(mk("sticky/sub", 0o755), "f"))
	stickyFile := file(filepath.Join(sticky, "f"))
	other := mk("other", 0o755)
	otherFile := file(filepath.Join(other, "f"))
	if err := os.Chown(other, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	linkInGW := link(good, filepath.Join(base, "gw", "link"))
	linkToGW := link("../gw/f", filepath.Join(base, "ok", "link"))
	linkToGood := link("f", filepath.Join(base, "ok", "rel"))
	// A user's link in /tmp points at a good file today; its owner may
	// point it elsewhere after the check.
	usersLink := link(good, filepath.Join(sticky, "users-link"))
	if err := os.Lchown(usersLink, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	rootsLink := link(good, filepath.Join(sticky, "roots-link"))
	for p, want := range map[string]string{
		good:       "",
		inSticky:   "",
		stickyFile: "",
		linkToGood: "",
		rootsLink:  "",
		usersLink:  "symbolic link " + usersLink + " is owned by uid 65534",
		gw:         "directory " + filepath.Join(base, "gw") + " is writable by group or others (mode 0775)",
		linkInGW:   "directory " + filepath.Join(base, "gw") + " is writable",
		linkToGW:   "directory " + filepath.Join(base, "gw") + " is writable",
		otherFile:  "directory " + other + " is owned by uid 65534",
		sticky:     sticky + " is writable by group or others (mode 0777)",
	} {
		err := CheckPath(p)
		if (want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", p, err, want)
		}
		if want != "" && (strings.HasPrefix(want, "directory") || strings.HasPrefix(want, "symbolic")) && !errors.Is(err, ErrUnsafePath) {
			t.Errorf("%s: %v is not ErrUnsafePath", p, err)
		}
	}
	if err := CheckPath(filepath.Join(base, "ok", "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}
