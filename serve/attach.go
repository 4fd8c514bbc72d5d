package serve

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/vpn-pppssh/vpn-pppssh/internal/pollfd"
	"github.com/vpn-pppssh/vpn-pppssh/internal/rundir"
	"github.com/vpn-pppssh/vpn-pppssh/pppssh"
)

// A client with SERVER_PTY runs the helper twice on one SSH connection:
// on a plain session, which sends the request (with a random token, the
// request's tty field) and gets the answer and the helper's lines, and on
// a terminal session, whose helper (Attach) reads the token from its
// terminal and hands the terminal over a Unix socket to the first one,
// named after the token in the state directory, which only root can
// enter. The first
// helper's pppd then speaks PPP on that terminal, with no relay process
// between sshd and pppd.
//
// What the token guards: a session of another account, or another client
// of the same account, cannot put its terminal under this link's pppd or
// take this link's, without the token, which travels only inside this
// client's SSH connection. The first helper also checks that the terminal
// came from a root process (the attaching helper, through sudo) of the
// same account, takes exactly one descriptor, which must be a terminal,
// and takes one attachment per token within AttachTimeout.

// AttachTimeout bounds the wait for the terminal session's helper, from
// the answer to the request, and a terminal helper's wait for its token.
const AttachTimeout = 10 * time.Second

// attachPath is the socket of a token, in the state directory, which
// only root may enter: named after the token's hash, so that a listing
// does not show tokens.
func attachPath(dir rundir.Dir, token string) string {
	sum := sha256.Sum256([]byte(token))
	return filepath.Join(string(dir), "tty-"+hex.EncodeToString(sum[:12])+".sock")
}

// attachListener waits for the terminal of one token.
type attachListener struct {
	ln *net.UnixListener
}

// listenAttach makes the token's socket, in the state directory, which
// must be root's own real directory that no one else may enter.
func listenAttach(dir rundir.Dir, token string) (*attachListener, error) {
	if !pppssh.ValidTTYToken(token) {
		return nil, errors.New("bad tty token")
	}
	d := string(dir)
	if err := os.MkdirAll(d, 0o700); err != nil {
		return nil, fmt.Errorf("terminal sockets: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(d, &st); err != nil {
		return nil, fmt.Errorf("terminal sockets: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR || st.Uid != uint32(os.Geteuid()) || st.Mode&0o077 != 0 {
		return nil, fmt.Errorf("terminal sockets: %s must be a directory that only uid %d may enter", d, os.Geteuid())
	}
	sweepAttach(dir)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: attachPath(dir, token), Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("terminal socket: %w", err)
	}
	return &attachListener{ln: ln}, nil
}

// sweepAttach removes the sockets of helpers that died without removing
// theirs (killed outright). A helper listens for AttachTimeout at most,
// so a socket a minute older than that has no one behind it. (Connecting
// to find out would be taken as the attachment by a live one.)
func sweepAttach(dir rundir.Dir) {
	names, _ := filepath.Glob(filepath.Join(string(dir), "tty-*.sock"))
	for _, name := range names {
		fi, err := os.Lstat(name)
		if err == nil && fi.Mode()&os.ModeSocket != 0 && time.Since(fi.ModTime()) > AttachTimeout+time.Minute {
			os.Remove(name)
		}
	}
}

// Close removes the socket.
func (l *attachListener) Close() error { return l.ln.Close() }

// terminal is the attached terminal, and its name in /dev/pts, checked;
// conn is held open until pppd has ended, and its end lets the terminal's
// helper exit.
type terminal struct {
	tty  *os.File
	path string
	conn *net.UnixConn
}

// Close releases the terminal and then its helper.
func (t *terminal) Close() error {
	return errors.Join(t.tty.Close(), t.conn.Close())
}

// accept waits, up to limit or the end of ctx, for the terminal of the
// token, from a root process working for uid; the socket is removed
// whatever happens.
func (l *attachListener) accept(ctx context.Context, limit time.Duration, uid int) (*terminal, error) {
	defer l.ln.Close()
	l.ln.SetDeadline(time.Now().Add(limit))
	stop := context.AfterFunc(ctx, func() { l.ln.SetDeadline(time.Unix(1, 0)) }) // after the deadline above, never overridden by it
	defer stop()
	conn, err := l.ln.AcceptUnix()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ErrEnded
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, fmt.Errorf("no terminal session attached within %v (SERVER_PTY)", limit)
		}
		return nil, fmt.Errorf("terminal socket: %w", err)
	}
	t, err := takeTerminal(conn, limit, uid)
	if err != nil {
		io.WriteString(conn, "no "+err.Error()+"\n")
		conn.Close()
		return nil, err
	}
	if _, err := io.WriteString(conn, "ok\n"); err != nil {
		t.Close()
		return nil, fmt.Errorf("terminal socket: %w", err)
	}
	return t, nil
}

// takeTerminal reads the attaching helper's one message: "uid N" and one
// descriptor, a terminal.
func takeTerminal(conn *net.UnixConn, limit time.Duration, uid int) (*terminal, error) {
	cred, err := peerCred(conn)
	if err != nil {
		return nil, err
	}
	if cred.Uid != 0 {
		return nil, fmt.Errorf("the terminal came from uid %d, not from root", cred.Uid)
	}
	conn.SetReadDeadline(time.Now().Add(limit))
	buf, oob := make([]byte, 64), make([]byte, unix.CmsgSpace(4*4))
	n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, fmt.Errorf("terminal socket: %w", err)
	}
	conn.SetReadDeadline(time.Time{})
	var fds []int
	if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
		for _, m := range msgs {
			if got, err := unix.ParseUnixRights(&m); err == nil {
				fds = append(fds, got...)
			}
		}
	}
	if len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("the terminal session sent %d descriptors, not one", len(fds))
	}
	tty := os.NewFile(uintptr(fds[0]), "terminal")
	fail := func(err error) (*terminal, error) {
		tty.Close()
		return nil, err
	}
	if got := strings.TrimSpace(string(buf[:n])); got != "uid "+strconv.Itoa(uid) {
		return fail(fmt.Errorf("the terminal session is another account's (%q)", clipText(got)))
	}
	path, err := ptsPath(tty, uid)
	if err != nil {
		return fail(err)
	}
	return &terminal{tty: tty, path: path, conn: conn}, nil
}

// ptsMajor is the major of every pseudo-terminal slave of devpts
// (Documentation/admin-guide/devices.txt; the minor is the index, up to
// 2^20, in /dev/pts).
const ptsMajor = 136

// ptsPath checks that tty is the slave of a pseudo-terminal of the host's
// /dev/pts, owned by uid (sshd gives the terminal to the account) or root,
// and returns its name there. pppd is given that name: without one it
// would use ttyname(0), which follows whatever path the descriptor was
// opened by, a path its sender may have chosen (a mount of its own, a
// name with a newline that forges pppd's log lines). No one but the
// kernel makes names in /dev/pts, and the name is checked to be the
// descriptor's own inode.
func ptsPath(tty *os.File, uid int) (string, error) {
	fd := int(tty.Fd())
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return "", fmt.Errorf("terminal: %w", err)
	}
	major, minor := unix.Major(st.Rdev), unix.Minor(st.Rdev)
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || major != ptsMajor || !term.IsTerminal(fd) {
		return "", errors.New("the terminal session sent a descriptor that is not a terminal of /dev/pts")
	}
	if st.Uid != uint32(uid) && st.Uid != 0 {
		return "", fmt.Errorf("the terminal session's terminal belongs to uid %d, not to the account", st.Uid)
	}
	path := "/dev/pts/" + strconv.FormatUint(uint64(minor), 10)
	var named unix.Stat_t
	if err := unix.Stat(path, &named); err != nil || named.Dev != st.Dev || named.Ino != st.Ino || named.Rdev != st.Rdev {
		return "", errors.New("the terminal session's terminal is not the one /dev/pts names")
	}
	return path, nil
}

// peerCred is the credentials of the process at the other end of conn.
func peerCred(conn *net.UnixConn) (*unix.Ucred, error) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	if cerr != nil {
		return nil, fmt.Errorf("terminal socket: peer credentials: %w", cerr)
	}
	return cred, nil
}

// clipText is a short, printable rendering of a peer's text.
func clipText(s string) string {
	if len(s) > 32 {
		s = s[:32]
	}
	return strconv.Quote(s)
}

// TokenTimeout bounds a terminal helper's wait for its token. The client
// sends it once the link's first helper has answered, which may take that
// helper's request (10 s), the replacement of an earlier session of the
// link (up to 10 s), the host lock (10 s) and undoing dead sessions first;
// a client gives up after its CONNECT_TIMEOUT (30 s by default) anyway.
const TokenTimeout = 60 * time.Second

// AttachOptions are a terminal helper's settings.
type AttachOptions struct {
	PolicyPath string // for its caps: the helpers of terminals take slots of their own
	StateDir   rundir.Dir
	Account    Account
	Terminal   *os.File      // the session's terminal (stdin)
	Limit      time.Duration // the wait for the token; 0: TokenTimeout
}

// Attach is the helper run on a client's terminal session (stdin is a
// terminal): it takes one of the account's terminal slots, reads the
// link's token from the terminal, hands the terminal to the helper that
// waits for that token, and returns once that helper is done with it (its
// pppd has ended) or ctx ends. It prints nothing on the terminal unless it
// fails: the terminal carries PPP.
func Attach(ctx context.Context, o AttachOptions) error {
	// Nothing is done as root to stdin before it is known to be what
	// sshd gives a session: a pty slave of the account's (ptsPath). sudo
	// lets the account give serve any stdin, /dev/ptmx or a serial line
	// included, whose mode and settings must not be touched.
	fd := int(o.Terminal.Fd())
	if _, err := ptsPath(o.Terminal, o.Account.UID); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("terminal: %w", err)
	}
	old, err := term.MakeRaw(fd)
	if err != nil {
		return fmt.Errorf("setting the terminal raw: %w", err)
	}
	// No one but the account (and root) may write on the line that is
	// about to carry its link: sshd makes it group tty's to write on.
	// TIOCEXCL: no one but root opens it again (pppd opens it as root).
	closed := st.Mode &^ 0o022 & 0o7777
	handed := false
	defer func() {
		if handed { // a terminal of a person, who ran serve by hand
			return
		}
		unix.IoctlSetInt(fd, unix.TIOCNXCL, 0)
		term.Restore(fd, old)
		var now unix.Stat_t
		if unix.Fstat(fd, &now) == nil && now.Mode&0o7777 == closed {
			unix.Fchmod(fd, st.Mode&0o7777) // unless someone changed it since
		}
	}()
	if err := unix.Fchmod(fd, closed); err != nil {
		return fmt.Errorf("terminal: %w", err)
	}
	if err := unix.IoctlSetInt(fd, unix.TIOCEXCL, 0); err != nil {
		return fmt.Errorf("terminal: %w", err)
	}
	policy, err := pppssh.LoadPolicy(o.PolicyPath)
	if err != nil {
		return err
	}
	// The account's terminal slot now, the global one once a link took
	// the token: an account's idle terminals cannot keep others' out.
	mine, err := takeSlot(o.StateDir, fmt.Sprintf("serve-tty-u%d-slot-", o.Account.UID), policy.MaxSessionsPerAccount)
	if errors.Is(err, ErrTooManySessions) {
		err = fmt.Errorf("%w of this account: all MAX_SESSIONS_PER_ACCOUNT=%d in %s are in use", ErrTooManySessions, policy.MaxSessionsPerAccount, policy.Path())
	}
	if err != nil {
		return err
	}
	defer mine.Release()
	limit := o.Limit
	if limit == 0 {
		limit = TokenTimeout
	}
	token, err := readToken(ctx, o.Terminal, limit)
	if err != nil {
		return err
	}
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: attachPath(o.StateDir, token), Net: "unix"})
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ECONNREFUSED) {
			return errors.New("no link is waiting for this terminal (SERVER_PTY): its token is unknown or its time has passed")
		}
		return fmt.Errorf("terminal socket: %w", err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if cred, err := peerCred(conn); err != nil || cred.Uid != 0 {
		return errors.New("the terminal socket is not root's")
	}
	global, err := takeSlot(o.StateDir, "serve-tty-slot-", policy.MaxSessions)
	if errors.Is(err, ErrTooManySessions) {
		err = fmt.Errorf("%w: all MAX_SESSIONS=%d in %s are in use", ErrTooManySessions, policy.MaxSessions, policy.Path())
	}
	if err != nil {
		return err
	}
	defer global.Release()
	msg := []byte("uid " + strconv.Itoa(o.Account.UID) + "\n")
	if _, _, err := conn.WriteMsgUnix(msg, unix.UnixRights(fd), nil); err != nil {
		return fmt.Errorf("handing the terminal over: %w", err)
	}
	br := bufio.NewReader(io.LimitReader(conn, 4<<10))
	line, err := br.ReadString('\n')
	if err != nil {
		if ctx.Err() != nil {
			return ErrEnded
		}
		return fmt.Errorf("handing the terminal over: %w", err)
	}
	if line != "ok\n" {
		return fmt.Errorf("the link refused this terminal: %s", strings.TrimPrefix(strings.TrimSpace(line), "no "))
	}
	handed = true
	// Held until the link's helper is done with the terminal: sshd closes
	// a terminal session when its command ends, which would hang up pppd.
	io.Copy(io.Discard, br)
	return nil
}

// readToken reads one line, the token, from the terminal within limit.
// The terminal is polled through a non-blocking duplicate (pollfd.Dup),
// set blocking again afterwards.
func readToken(ctx context.Context, f *os.File, limit time.Duration) (string, error) {
	polled, restore, err := pollfd.Dup(f)
	if err != nil {
		return "", fmt.Errorf("terminal: %w", err)
	}
	defer restore()
	if err := polled.SetReadDeadline(time.Now().Add(limit)); err != nil {
		return "", fmt.Errorf("terminal: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { polled.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	var line []byte
	b := make([]byte, 1)
	for {
		if _, err := io.ReadFull(polled, b); err != nil {
			if ctx.Err() != nil {
				return "", ErrEnded
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return "", fmt.Errorf("no link token on this terminal within %v: serve on a terminal is run by vpn-pppssh clients (SERVER_PTY), not by hand", limit)
			}
			return "", fmt.Errorf("reading the link token: %w", err)
		}
		if b[0] == '\n' || b[0] == '\r' {
			break
		}
		if len(line) > 64 {
			return "", errors.New("the link token is too long")
		}
		line = append(line, b[0])
	}
	if !pppssh.ValidTTYToken(string(line)) {
		return "", fmt.Errorf("bad link token %s", clipText(string(line)))
	}
	return string(line), nil
}
