package dnsconf

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrChanged is matched by the error of an undo that found resolv.conf
// changed by someone else (an admin, another tool) since vpn-pppssh wrote
// it. The file is left as it is: it is no longer the link's to restore.
var ErrChanged = errors.New("changed by someone else since vpn-pppssh wrote it")

// maxResolvConf bounds the resolv.conf the file backend reads and keeps.
const maxResolvConf = 1 << 20

// onDisk is what is at a path: nothing, a regular file, a symbolic link.
type onDisk struct {
	exists  bool
	symlink string // the target, when it is a symbolic link
	regular bool
	content []byte // a regular file's bytes
	mode    fs.FileMode
	uid     int
	gid     int
}

// look reports what is at path, without following a symbolic link.
func look(path string) (onDisk, error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return onDisk{}, nil
	}
	if err != nil {
		return onDisk{}, err
	}
	d := onDisk{exists: true}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		d.symlink, err = os.Readlink(path)
		return d, err
	case fi.Mode().IsRegular():
		d.regular, d.mode = true, fi.Mode().Perm()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			d.uid, d.gid = int(st.Uid), int(st.Gid)
		}
		d.content, err = readLimited(path, unix.O_NOFOLLOW)
		return d, err
	}
	return d, fmt.Errorf("neither a regular file nor a symbolic link (%v)", fi.Mode().Type())
}

// readLimited reads at most maxResolvConf bytes of path.
func readLimited(path string, flags int) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_CLOEXEC|flags, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxResolvConf+1))
	if err == nil && len(b) > maxResolvConf {
		err = fmt.Errorf("larger than %d bytes: not a resolv.conf", maxResolvConf)
	}
	return b, err
}

// original records what is at path before the file backend replaces it.
// Through a symbolic link, Original is the text it points to (nothing, if
// it points nowhere).
func original(path string) (*fileState, error) {
	d, err := look(path)
	if err != nil {
		return nil, err
	}
	f := &fileState{Path: path, Existed: d.exists, Symlink: d.symlink, Original: d.content, Mode: d.mode, UID: d.uid, GID: d.gid}
	if d.symlink != "" {
		f.Original, err = readLimited(path, 0)
		if errors.Is(err, fs.ErrNotExist) {
			f.Original, err = nil, nil
		}
	}
	return f, err
}

// writtenMode is the mode and owner of the file written over f: the
// original's, when it was a regular file; else 0644, the caller's (-1).
func (f *fileState) writtenMode() (fs.FileMode, int, int) {
	if f.Existed && f.Symlink == "" {
		return f.Mode, f.UID, f.GID
	}
	return 0o644, -1, -1
}

// isOriginal reports whether d is f's original: the same absence, link
// target or bytes.
func (f *fileState) isOriginal(d onDisk) bool {
	switch {
	case !f.Existed:
		return !d.exists
	case f.Symlink != "":
		return d.symlink == f.Symlink
	}
	return d.regular && bytes.Equal(d.content, f.Original)
}

// isWritten reports whether d is what the link wrote.
func (f *fileState) isWritten(d onDisk) bool {
	return d.regular && bytes.Equal(d.content, f.Written)
}

// applyFile replaces resolv.conf with the link's nameservers and search
// domains followed by the original's lines, after recording the original
// in the state file.
func applyFile(h *host, cfg Config) (*state, error) {
	unlock, err := lockRunDir(h.runDir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	f, err := original(h.resolvConf)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", h.resolvConf, err)
	}
	f.Written = mergeText(cfg, f.Original)
	st := &state{Link: cfg.Link, Backend: BackendFile, Iface: cfg.Iface, Servers: cfg.Servers, Search: cfg.Search, File: f}
	if err := h.writeState(st); err != nil {
		return nil, err
	}
	mode, uid, gid := f.writtenMode()
	if err := h.writeFile(f.Path, f.Written, mode, uid, gid); err != nil {
		err = fmt.Errorf("writing %s: %w", f.Path, err)
		if uerr := restore(h, st); uerr != nil && !errors.Is(uerr, ErrChanged) {
			return st, errors.Join(err, fmt.Errorf("undoing it: %w", uerr))
		}
		if rerr := removeState(h.runDir, st.Link); rerr != nil {
			return st, errors.Join(err, rerr)
		}
		return nil, err
	}
	return st, nil
}

// undoFile puts back the original resolv.conf, if the file is still the
// one the link wrote. The state file is read again first: another link's
// undo may have rebased it (see rebase).
func undoFile(h *host, st *state) error {
	unlock, err := lockRunDir(h.runDir)
	if err != nil {
		return err
	}
	defer unlock()
	if fresh, err := readState(h.runDir, st.Link); err == nil && fresh != nil && fresh.Backend == BackendFile {
		st = fresh
	}
	return restore(h, st)
}

// restore is undoFile for a caller that holds the lock.
func restore(h *host, st *state) error {
	f := st.File
	cur, err := look(f.Path)
	if err != nil {
		return fmt.Errorf("restoring %s: reading it: %w", f.Path, err)
	}
	switch {
	case f.isWritten(cur):
		if err := h.putBack(f); err != nil {
			return fmt.Errorf("restoring %s: %w", f.Path, err)
		}
		return nil
	case f.isOriginal(cur):
		return nil // never replaced, or put back already
	}
	done, err := rebase(h, st, cur)
	if err != nil {
		return fmt.Errorf("restoring %s under the links written over it: %w", f.Path, err)
	}
	if done {
		return nil
	}
	return fmt.Errorf("restoring %s for link %s: %w; left as it is", f.Path, st.Link, ErrChanged)
}

// putBack puts f's original in place: removes the file when there was
// none, makes the symbolic link again, or writes the original's bytes
// with its mode and owner.
func (h *host) putBack(f *fileState) error {
	switch {
	case !f.Existed:
		if err := os.Remove(f.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	case f.Symlink != "":
		return h.symlink(f.Symlink, f.Path)
	}
	return h.writeFile(f.Path, f.Original, f.Mode, f.UID, f.GID)
}

// writeFile replaces path with data atomically. A path that is a mount
// point (a container's bind-mounted resolv.conf) cannot be renamed over,
// so it is rewritten where it is.
func (h *host) writeFile(path string, data []byte, mode fs.FileMode, uid, gid int) error {
	err := replaceFile(h.rename, path, data, mode, uid, gid)
	if errors.Is(err, unix.EBUSY) {
		h.log.Debug("a mount point: rewriting in place", "file", path)
		return writeInPlace(path, data)
	}
	return err
}

// symlink replaces path with a symbolic link to target atomically.
func (h *host) symlink(target, path string) error {
	tmp := tempName(path)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if err := h.rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	syncDir(filepath.Dir(path))
	return nil
}

// tempName is a name beside path that nothing else uses.
func tempName(path string) string {
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".vpn-pppssh-"+rand.Text()[:12])
}

// replaceFile writes data to a new file beside path, with the mode (and,
// when uid is not -1 and differs from the caller's, the owner) given,
// syncs it and renames it over path.
func replaceFile(rename func(string, string) error, path string, data []byte, mode fs.FileMode, uid, gid int) error {
	tmp := tempName(path)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Chmod(mode); err != nil {
		return err
	}
	if uid >= 0 && (uid != os.Geteuid() || gid != os.Getegid()) {
		if err := f.Chown(uid, gid); err != nil {
			return err
		}
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := rename(tmp, path); err != nil {
		os.Remove(tmp)
		done = true
		return err
	}
	done = true
	syncDir(filepath.Dir(path))
	return nil
}

// writeInPlace rewrites the regular file at path, keeping its inode.
func writeInPlace(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncDir makes a rename in dir durable; a failure loses nothing but
// durability, so it is not reported.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
