// Package rootfile checks that a file a root process trusts (a link's
// configuration, the server's policy, a hook it runs) could only have been
// written by root: whoever can write it chooses what runs as root.
package rootfile

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// Check refuses, when the caller is root, a file writable by group or
// others or owned by another user. The error says which and how to fix it.
func Check(fi fs.FileInfo) error {
	if os.Geteuid() != 0 {
		return nil
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("writable by group or others (mode %04o); chmod go-w it", fi.Mode().Perm())
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 {
		return fmt.Errorf("owned by uid %d, not root", st.Uid)
	}
	return nil
}
