package rootfile

import (
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
	os.WriteFile(p, nil, 0o600)
	for mode, want := range map[os.FileMode]string{0o600: "", 0o644: "", 0o620: "writable by group", 0o602: "writable by group or others"} {
		os.Chmod(p, mode)
		fi, _ := os.Stat(p)
		err := Check(fi)
		if (want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), want) {
			t.Errorf("mode %04o: %v", mode, err)
		}
	}
	os.Chmod(p, 0o600)
	os.Chown(p, 65534, 65534)
	fi, _ := os.Stat(p)
	if err := Check(fi); err == nil || !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Errorf("other owner: %v", err)
	}
}
