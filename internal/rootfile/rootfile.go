// Package rootfile checks that a file a root process trusts (a link's
// configuration, the server's policy, a hook it runs, a known_hosts file,
// an SSH key or ssh_config) could only have been written by root: whoever
// can write it, or rename another file into its place, chooses what runs
// as root or whom root trusts.
package rootfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
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
	if uid := owner(fi); uid != 0 {
		return fmt.Errorf("owned by uid %d, not root", uid)
	}
	return nil
}

func owner(fi fs.FileInfo) uint32 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Uid
	}
	return 0
}

// ErrUnsafePath marks a path that a user other than root could change.
var ErrUnsafePath = errors.New("could be changed by a user other than root")

// maxSymlinks is the kernel's limit on symbolic links in one lookup.
const maxSymlinks = 40

// CheckPath is Check for the file at path and for every directory on the
// way to it, as OpenSSH's safe_path checks ~/.ssh: each directory must be
// owned by root and not writable by group or others, so that nobody else
// can rename another file into the path. A directory writable by all but
// sticky and owned by root (/tmp) is accepted on the way, because then only
// root can rename or remove the root-owned entry that follows it. Symbolic
// links are followed, and the directories that hold them are checked too;
// a link must be root's itself, since in a sticky directory its owner can
// replace it.
// It does nothing unless the caller is root; a missing file gives an error
// that matches fs.ErrNotExist.
func CheckPath(path string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	root, err := os.Lstat("/")
	if err != nil {
		return err
	}
	if err := checkDir("/", root); err != nil {
		return err
	}
	todo := components(abs)
	cur, links := "/", 0
	for len(todo) > 0 {
		comp := todo[0]
		todo = todo[1:]
		switch comp {
		case ".":
			continue
		case "..":
			cur = filepath.Dir(cur)
			continue
		}
		p := filepath.Join(cur, comp)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			if links++; links > maxSymlinks {
				return fmt.Errorf("%s: too many symbolic links", path)
			}
			// Its folder is root's (checked on the way here), but in a
			// sticky one (/tmp) the link's owner may still replace it.
			if uid := owner(fi); uid != 0 {
				return fmt.Errorf("symbolic link %s is owned by uid %d, not root: it %w", p, uid, ErrUnsafePath)
			}
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if filepath.IsAbs(target) {
				cur = "/"
			}
			todo = append(components(target), todo...)
			continue
		}
		if len(todo) == 0 {
			if err := Check(fi); err != nil {
				return fmt.Errorf("%s is %w", p, err)
			}
			return nil
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s: %w", p, syscall.ENOTDIR)
		}
		if err := checkDir(p, fi); err != nil {
			return err
		}
		cur = p
	}
	return nil
}

// checkDir checks a directory on the way to a file.
func checkDir(p string, fi fs.FileInfo) error {
	if uid := owner(fi); uid != 0 {
		return fmt.Errorf("directory %s is owned by uid %d, not root: it %w", p, uid, ErrUnsafePath)
	}
	if fi.Mode().Perm()&0o022 != 0 && fi.Mode()&fs.ModeSticky == 0 {
		return fmt.Errorf("directory %s is writable by group or others (mode %04o): what is in it %w; chmod go-w it",
			p, fi.Mode().Perm(), ErrUnsafePath)
	}
	return nil
}

func components(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" {
			out = append(out, c)
		}
	}
	return out
}
