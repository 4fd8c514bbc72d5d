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
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: attachPath(dir, token), Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("terminal socket: %w", err)
	}
	return &attachListener{ln: ln}, nil
}

// Close removes the socket.
func (l *attachListener) Close() error { return l.ln.Close() }

// terminal is the attached terminal; conn is held open until pppd has
// ended, and its end lets the terminal's helper exit.
type terminal struct {
	tty  *os.File
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
	stop := context.AfterFunc(ctx, func() { l.ln.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	l.ln.SetDeadline(time.Now().Add(limit))
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
	if !term.IsTerminal(int(tty.Fd())) {
		return fail(errors.New("the terminal session sent a descriptor that is not a terminal"))
	}
	return &terminal{tty: tty, conn: conn}, nil
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

// Attach is the helper run on a client's terminal session (stdin is a
// terminal): it reads the link's token from the terminal within limit,
// hands the terminal to the helper that waits for that token, and returns
// once that helper is done with it (its pppd has ended) or ctx ends. It
// prints nothing on the terminal unless it fails: the terminal carries
// PPP.
func Attach(ctx context.Context, dir rundir.Dir, stdin *os.File, account Account, limit time.Duration) error {
	if _, err := term.MakeRaw(int(stdin.Fd())); err != nil {
		return fmt.Errorf("setting the terminal raw: %w", err)
	}
	token, err := readToken(stdin, limit)
	if err != nil {
		return err
	}
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: attachPath(dir, token), Net: "unix"})
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
	msg := []byte("uid " + strconv.Itoa(account.UID) + "\n")
	if _, _, err := conn.WriteMsgUnix(msg, unix.UnixRights(int(stdin.Fd())), nil); err != nil {
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
	// Held until the link's helper is done with the terminal: sshd closes
	// a terminal session when its command ends, which would hang up pppd.
	io.Copy(io.Discard, br)
	return nil
}

// readToken reads one line, the token, from the terminal within limit.
// The terminal is polled through a non-blocking duplicate (as
// pppssh.ReadRequestWithin does), set blocking again afterwards.
func readToken(f *os.File, limit time.Duration) (string, error) {
	orig := int(f.Fd()) // before the duplicate is made non-blocking: Fd makes f blocking
	fd, err := unix.Dup(orig)
	if err != nil {
		return "", fmt.Errorf("terminal: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return "", fmt.Errorf("terminal: %w", err)
	}
	defer unix.SetNonblock(orig, false)
	polled := os.NewFile(uintptr(fd), f.Name())
	defer polled.Close()
	if err := polled.SetReadDeadline(time.Now().Add(limit)); err != nil {
		return "", fmt.Errorf("terminal: %w", err)
	}
	var line []byte
	b := make([]byte, 1)
	for {
		if _, err := io.ReadFull(polled, b); err != nil {
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
