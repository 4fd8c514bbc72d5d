// Package setup prepares a server for clients of the server half, as the
// HOWTO's section 4 does by hand: the account, its authorized_keys line
// pinned to the helper, a sudoers drop-in checked by visudo, a starting
// policy, and a look at pppd and tun. Each step says what it would change;
// Apply changes only what is not already as wanted, and never replaces
// what an admin wrote differently: it reports it instead. Run twice, the
// second run changes nothing.
package setup

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/vpn-pppssh/vpn-pppssh/internal/rootfile"
	"github.com/vpn-pppssh/vpn-pppssh/pppssh"
)

// Config is what the admin asks for.
type Config struct {
	Account    string         // the unprivileged account clients log in as
	Helper     string         // this program on the server, absolute
	Key        []byte         // the client's public key, one authorized_keys line without options
	Peers      []netip.Prefix // ALLOW_PEERS of a new policy file
	PolicyPath string         // pppssh.PolicyPath
	SudoersDir string         // /etc/sudoers.d
	PPPD       string         // /usr/sbin/pppd
}

// Action is what a step does: nothing, a change, or a report.
type Action string

const (
	Unchanged Action = "unchanged" // already as wanted
	Change    Action = "change"    // Apply makes it so
	Keep      Action = "keep"      // the admin's own, left as it is
	Check     Action = "ok"        // a look, no change
	Warn      Action = "WARNING"   // a look that found something missing, needed by some modes only
	Missing   Action = "MISSING"   // the server half cannot work until the admin acts
)

// Step is one part of the setup.
type Step struct {
	What   string // "account vpn", a file
	Action Action
	Detail string
	apply  func() error
}

// Plan looks at the host and says what each step would do.
func Plan(c Config) ([]Step, error) {
	if !pppssh.ValidUser(c.Account) {
		return nil, fmt.Errorf("account %q: not a user name", c.Account)
	}
	if !pppssh.ValidPath(c.Helper) {
		// It goes into a sudoers rule and a forced command: a space, a
		// comma or a quote would change what they grant.
		return nil, fmt.Errorf("helper %q: an absolute path of letters, digits and ._+@-/ only", c.Helper)
	}
	key, comment, opts, rest, err := ssh.ParseAuthorizedKey(c.Key)
	if err != nil || len(opts) > 0 || len(bytes.TrimSpace(rest)) > 0 {
		return nil, fmt.Errorf("the client's key: want one public key line (ssh-ed25519 AAAA... comment) without options: %v", err)
	}
	command := "sudo -n " + c.Helper + " serve"
	var steps []Step
	steps = append(steps, accountStep(c.Account))
	steps = append(steps, keyStep(c.Account, command, key, comment))
	s, err := sudoersStep(c, command)
	if err != nil {
		return nil, err
	}
	steps = append(steps, s, policyStep(c))
	steps = append(steps, checks(c)...)
	return steps, nil
}

// Apply carries out the steps that change something, in order; it stops
// at the first failure.
func Apply(steps []Step) error {
	for _, s := range steps {
		if s.Action != Change {
			continue
		}
		if err := s.apply(); err != nil {
			return fmt.Errorf("%s: %w", s.What, err)
		}
	}
	return nil
}

func accountStep(name string) Step {
	s := Step{What: "account " + name}
	if _, err := user.Lookup(name); err == nil {
		s.Action, s.Detail = Unchanged, "exists"
		return s
	}
	s.Action = Change
	s.Detail = "useradd --create-home --shell /bin/sh " + name + "; usermod -p '*' " + name +
		" (a shell, since sshd runs the forced command through it; '*': no password, not locked)"
	s.apply = func() error {
		if out, err := exec.Command("useradd", "--create-home", "--shell", "/bin/sh", name).CombinedOutput(); err != nil {
			return fmt.Errorf("useradd: %w: %s", err, bytes.TrimSpace(out))
		}
		if out, err := exec.Command("usermod", "-p", "*", name).CombinedOutput(); err != nil {
			return fmt.Errorf("usermod: %w: %s", err, bytes.TrimSpace(out))
		}
		return nil
	}
	return s
}

// keyStep adds the client's key to the account's authorized_keys, pinned
// to the helper: restrict (no forwarding, no terminal), pty (the terminal
// the link's pppd speaks on, SERVER_PTY; the forced command runs on it
// like on any session) and the forced command. A line for the same key
// with other options is the admin's.
func keyStep(name, command string, key ssh.PublicKey, comment string) Step {
	line := keyOptions(command) + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
	if comment != "" {
		line += " " + comment
	}
	s := Step{What: "~" + name + "/.ssh/authorized_keys", Detail: line + " (" + ssh.FingerprintSHA256(key) + ")"}
	var data []byte
	if u, err := user.Lookup(name); err == nil {
		// An account made by the step before is looked up when the
		// key is added: its home is what useradd chose.
		s.What = filepath.Join(u.HomeDir, ".ssh", "authorized_keys")
		data, err = os.ReadFile(s.What)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.Action, s.Detail = Missing, err.Error()
			return s
		}
	}
	for rest := data; len(rest) > 0; {
		k, _, opts, next, err := ssh.ParseAuthorizedKey(rest)
		if err != nil {
			break
		}
		rest = next
		if bytes.Equal(k.Marshal(), key.Marshal()) {
			if strings.Join(opts, ",") == keyOptions(command) {
				s.Action, s.Detail = Unchanged, "has the key, pinned to "+command
			} else {
				s.Action, s.Detail = Keep, "has this key with other options ("+strings.Join(opts, ",")+"): left as it is"
			}
			return s
		}
	}
	s.Action = Change
	s.apply = func() error { return appendKey(name, line) }
	return s
}

// appendKey appends line to the account's ~/.ssh/authorized_keys,
// creating ~/.ssh (0700) and the file (0600) owned by the account, as
// sshd's StrictModes wants. Root does this in a folder the account owns:
// nothing on the way is followed if it is a symbolic link (the account
// could point ~/.ssh at /etc), the file must be a regular file of the
// account's or root's, and ownership and mode are set on what was
// opened, never by path.
func appendKey(name, line string) error {
	u, err := user.Lookup(name)
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	home, err := unix.Open(u.HomeDir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("home %s: %w", u.HomeDir, err)
	}
	defer unix.Close(home)
	if err := unix.Mkdirat(home, ".ssh", 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("%s/.ssh: %w", u.HomeDir, err)
	}
	dir, err := unix.Openat(home, ".ssh", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%s/.ssh (not a folder, or a link): %w", u.HomeDir, err)
	}
	defer unix.Close(dir)
	if err := ownedBy(dir, uid, unix.S_IFDIR); err != nil {
		return fmt.Errorf("%s/.ssh: %w", u.HomeDir, err)
	}
	if err := unix.Fchown(dir, uid, gid); err != nil {
		return err
	}
	if err := unix.Fchmod(dir, 0o700); err != nil {
		return err
	}
	fd, err := unix.Openat(dir, "authorized_keys", unix.O_RDWR|unix.O_APPEND|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("%s/.ssh/authorized_keys (a link?): %w", u.HomeDir, err)
	}
	f := os.NewFile(uintptr(fd), filepath.Join(u.HomeDir, ".ssh", "authorized_keys"))
	defer f.Close()
	if err := ownedBy(fd, uid, unix.S_IFREG); err != nil {
		return fmt.Errorf("%s: %w", f.Name(), err)
	}
	if fi, err := f.Stat(); err == nil && fi.Size() > 0 {
		// A file that does not end in a newline gets one first.
		b := make([]byte, 1)
		if _, err := f.ReadAt(b, fi.Size()-1); err == nil && b[0] != '\n' {
			line = "\n" + line
		}
	}
	if _, err := f.WriteString(line + "\n"); err != nil {
		return err
	}
	if err := unix.Fchown(fd, uid, gid); err != nil {
		return err
	}
	return unix.Fchmod(fd, 0o600)
}

// ownedBy checks that fd is of the given type (unix.S_IFDIR or S_IFREG)
// and belongs to uid or root.
func ownedBy(fd, uid int, kind uint32) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != kind {
		return errors.New("not what it should be (a folder, or a regular file)")
	}
	if int(st.Uid) != uid && st.Uid != 0 {
		return fmt.Errorf("belongs to uid %d, neither the account nor root", st.Uid)
	}
	return nil
}

// keyOptions are the authorized_keys options of a client's key.
func keyOptions(command string) string { return `restrict,pty,command="` + command + `"` }

// sudoersStep writes /etc/sudoers.d/vpn-pppssh-ACCOUNT: the one command
// the account may run as root, the helper's. visudo -c checks the file
// before it is put in place; a file there with other content is the
// admin's.
func sudoersStep(c Config, command string) (Step, error) {
	// sudo's includedir skips a file with a '.' in its name.
	path := filepath.Join(c.SudoersDir, "vpn-pppssh-"+strings.ReplaceAll(c.Account, ".", "_"))
	// !use_pty: sudo would otherwise run the helper of a terminal
	// session (SERVER_PTY) on a pty of its own and relay between the
	// two, the very relay process that SERVER_PTY takes out of the link.
	// !log_input, !log_output: sudo's I/O logs would do the same, and
	// record every byte of the link besides.
	want := "# written by vpn-pppssh server-setup: " + c.Account + " may run the server half, and nothing else, as root\n" +
		c.Account + " ALL=(root) NOPASSWD: " + c.Helper + " serve\n" +
		"Defaults!" + c.Helper + " !use_pty, !log_input, !log_output\n"
	s := Step{What: path, Detail: strings.ReplaceAll(strings.TrimSpace(strings.SplitN(want, "\n", 2)[1]), "\n", "; ")}
	have, err := os.ReadFile(path)
	switch {
	case err == nil && string(have) == want:
		s.Action = Unchanged
		return s, nil
	case err == nil:
		s.Action, s.Detail = Keep, "exists with other content: left as it is (it should allow exactly: "+s.Detail+")"
		return s, nil
	case !errors.Is(err, fs.ErrNotExist):
		return s, err
	}
	s.Action = Change
	s.Detail += " (checked with visudo -c first)"
	s.apply = func() error { return writeSudoers(path, want) }
	return s, nil
}

// writeSudoers writes the drop-in beside its place under a name sudo
// skips (it contains a '.'), has visudo check it, then renames it.
func writeSudoers(path, content string) error {
	tmp := filepath.Join(filepath.Dir(path), ".vpn-pppssh-setup.tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o440); err != nil {
		return err
	}
	if out, err := exec.Command("visudo", "-c", "-q", "-f", tmp).CombinedOutput(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("visudo -c refused it: %w: %s", err, bytes.TrimSpace(out))
	}
	if err := os.Chmod(tmp, 0o440); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// policyStep writes a starting policy when there is none: ALLOW_PEERS
// from the admin, everything else refused until the admin allows it.
func policyStep(c Config) Step {
	s := Step{What: c.PolicyPath}
	if _, err := os.Stat(c.PolicyPath); err == nil {
		p, err := pppssh.LoadPolicy(c.PolicyPath)
		if err != nil {
			s.Action, s.Detail = Missing, "exists but does not load: "+err.Error()
			return s
		}
		s.Action, s.Detail = Keep, "exists: left as it is (ALLOW_PEERS "+prefixes(p.AllowPeers)+")"
		return s
	}
	if len(c.Peers) == 0 {
		s.Action, s.Detail = Missing, "no policy: give --peers (the range of tunnel addresses clients may use), or write it by hand (HOWTO section 4, step 6)"
		return s
	}
	content := "# /etc/vpn-pppssh/server.conf, written by vpn-pppssh server-setup.\n" +
		"# What clients of the server half may ask for; the rest is refused.\n" +
		"# See HOWTO section 4, step 6, and section 11.\n" +
		"ALLOW_PEERS=" + prefixes(c.Peers) + "\n" +
		"#ALLOW_NETWORKS=\n#ALLOW_FORWARDING=no\n#ALLOW_MASQUERADE=no\n#MAX_SESSIONS=64\n"
	s.Action, s.Detail = Change, "ALLOW_PEERS="+prefixes(c.Peers)+", nothing else allowed"
	s.apply = func() error {
		if err := os.MkdirAll(filepath.Dir(c.PolicyPath), 0o755); err != nil {
			return err
		}
		return os.WriteFile(c.PolicyPath, []byte(content), 0o644)
	}
	return s
}

func prefixes(ps []netip.Prefix) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.String())
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ",")
}

// checks look at what the server half needs and cannot install: the
// helper itself (root's, as sudo will run it), pppd and the PPP device
// for PPP mode, /dev/net/tun for tun and ethernet modes.
func checks(c Config) []Step {
	look := func(what, path string, extra error) Step {
		s := Step{What: what, Action: Check, Detail: path}
		if _, err := os.Stat(path); err != nil {
			s.Action, s.Detail = Warn, err.Error()
		} else if extra != nil {
			s.Action, s.Detail = Warn, extra.Error()
		}
		return s
	}
	helper := look("the server half", c.Helper, rootfile.CheckPath(c.Helper))
	if helper.Action == Warn {
		helper.Action = Missing // sudo would run nothing, or what others may replace
	}
	return []Step{
		helper,
		look("pppd (MODE=ppp)", c.PPPD, nil),
		look("the PPP device (MODE=ppp)", "/dev/ppp", nil),
		look("the tun device (MODE=tun, ethernet)", "/dev/net/tun", nil),
	}
}
