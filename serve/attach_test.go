package serve

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/vpn-pppssh/vpn-pppssh/internal/rundir"
)

const testToken = "0123456789abcdef0123456789abcdef"

// testPTY is a terminal as sshd would give the terminal session: the
// master is the client's end.
func testPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, s, err := pty.Open()
	if err != nil {
		t.Fatalf("pty: %v", err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

func stateDir(t *testing.T) rundir.Dir {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("needs root: the attaching side checks that the socket's owner is root")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil { // as rundir makes it
		t.Fatal(err)
	}
	return rundir.Dir(dir)
}

// attachPolicy is a policy file that allows perAccount sessions (and
// terminals) per account.
func attachPolicy(t *testing.T, perAccount int) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "server.conf")
	conf := "ALLOW_PEERS=198.51.100.0/24\nMAX_SESSIONS_PER_ACCOUNT=" + strconv.Itoa(perAccount) + "\n"
	if err := os.WriteFile(p, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func attach(dir rundir.Dir, policy string, tty *os.File, uid int, limit time.Duration) error {
	return Attach(context.Background(), AttachOptions{PolicyPath: policy, StateDir: dir, Account: Account{UID: uid}, Terminal: tty, Limit: limit})
}

func rdev(t *testing.T, f *os.File) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	return st.Rdev
}

// The terminal session's helper reads the token from its terminal and
// hands that very terminal over; it stays until the link lets it go, and
// the socket is gone once taken.
func TestAttachHandsOverTheTerminal(t *testing.T) {
	dir := stateDir(t)
	ln, err := listenAttach(dir, testToken)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	master, slave := testPTY(t)
	if _, err := io.WriteString(master, testToken+"\n"); err != nil {
		t.Fatal(err)
	}
	attached := make(chan error, 1)
	policy := attachPolicy(t, 8)
	go func() { attached <- attach(dir, policy, slave, 1000, 5*time.Second) }()
	term, err := ln.accept(context.Background(), 5*time.Second, 1000)
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	if rdev(t, term.tty) != rdev(t, slave) {
		t.Error("the terminal handed over is not the session's")
	}
	if term.path != slave.Name() {
		t.Errorf("terminal named %q, want %q", term.path, slave.Name())
	}
	if fi, err := os.Stat(slave.Name()); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the terminal is open to others: %v %v", fi.Mode(), err)
	}
	if _, err := os.Stat(attachPath(dir, testToken)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket still there after the attachment: %v", err)
	}
	// The terminal carries bytes both ways, raw: the token's line was
	// taken by the helper, and nothing after it.
	if _, err := master.Write([]byte{0x7e, 0xff, 0x03, '\r', '\n', 0x7e}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, err := term.tty.Read(buf)
	if err != nil || string(buf[:n]) != "\x7e\xff\x03\r\n\x7e" {
		t.Errorf("read from the attached terminal: %q %v", buf[:n], err)
	}
	select {
	case err := <-attached:
		t.Fatalf("the terminal's helper left while the link holds its terminal: %v", err)
	default:
	}
	term.Close()
	select {
	case err := <-attached:
		if err != nil {
			t.Errorf("Attach: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the terminal's helper did not end when the link let it go")
	}
}

func TestAttachRefusals(t *testing.T) {
	dir := stateDir(t)
	policy := attachPolicy(t, 1)
	t.Run("another account", func(t *testing.T) {
		ln, err := listenAttach(dir, testToken)
		if err != nil {
			t.Fatal(err)
		}
		master, slave := testPTY(t)
		io.WriteString(master, testToken+"\n")
		attached := make(chan error, 1)
		go func() { attached <- attach(dir, policy, slave, 1001, 5*time.Second) }()
		_, err = ln.accept(context.Background(), 5*time.Second, 1000)
		if err == nil || !strings.Contains(err.Error(), "another account's") {
			t.Errorf("accept: %v", err)
		}
		if err := <-attached; err == nil || !strings.Contains(err.Error(), "the link refused this terminal: the terminal session is another account's") {
			t.Errorf("Attach: %v", err)
		}
	})
	t.Run("unknown token", func(t *testing.T) {
		master, slave := testPTY(t)
		if err := os.Chmod(slave.Name(), 0o620); err != nil {
			t.Fatal(err)
		}
		io.WriteString(master, "fedcba9876543210fedcba9876543210\n")
		err := attach(dir, policy, slave, 1000, 5*time.Second)
		if err == nil || !strings.Contains(err.Error(), "no link is waiting for this terminal") {
			t.Errorf("Attach: %v", err)
		}
		// A terminal not handed over is left as it was: a person's,
		// who ran serve by hand.
		if fi, err := os.Stat(slave.Name()); err != nil || fi.Mode().Perm() != 0o620 {
			t.Errorf("terminal mode after the refusal: %v %v", fi.Mode(), err)
		}
	})
	t.Run("bad token", func(t *testing.T) {
		master, slave := testPTY(t)
		io.WriteString(master, "../../etc/passwd\n")
		err := attach(dir, policy, slave, 1000, 5*time.Second)
		if err == nil || !strings.Contains(err.Error(), `bad link token "../../etc/passwd"`) {
			t.Errorf("Attach: %v", err)
		}
	})
	t.Run("stdin not a pty slave", func(t *testing.T) {
		// Refused before anything is changed as root: a master, which
		// would be /dev/ptmx's own node, or /dev/null.
		master, _ := testPTY(t)
		null, err := os.OpenFile("/dev/null", os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer null.Close()
		for _, f := range []*os.File{master, null} {
			before, _ := os.Stat("/dev/null")
			if err := attach(dir, policy, f, 1000, time.Second); err == nil || !strings.Contains(err.Error(), "not a terminal of /dev/pts") {
				t.Errorf("%s: %v", f.Name(), err)
			}
			if after, _ := os.Stat("/dev/null"); after.Mode() != before.Mode() {
				t.Errorf("/dev/null's mode changed: %v -> %v", before.Mode(), after.Mode())
			}
		}
	})
	t.Run("no token", func(t *testing.T) {
		_, slave := testPTY(t)
		err := attach(dir, policy, slave, 1000, 100*time.Millisecond)
		if err == nil || !strings.Contains(err.Error(), "not by hand") {
			t.Errorf("Attach: %v", err)
		}
	})
	t.Run("no terminal session", func(t *testing.T) {
		ln, err := listenAttach(dir, testToken)
		if err != nil {
			t.Fatal(err)
		}
		_, err = ln.accept(context.Background(), 100*time.Millisecond, 1000)
		if err == nil || !strings.Contains(err.Error(), "no terminal session attached within 100ms") {
			t.Errorf("accept: %v", err)
		}
		if _, err := os.Stat(attachPath(dir, testToken)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket left after the wait: %v", err)
		}
	})
	t.Run("ended while waiting", func(t *testing.T) {
		ln, err := listenAttach(dir, testToken)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		if _, err := ln.accept(ctx, time.Minute, 1000); !errors.Is(err, ErrEnded) {
			t.Errorf("accept: %v", err)
		}
	})
	t.Run("not a terminal", func(t *testing.T) {
		ln, err := listenAttach(dir, testToken)
		if err != nil {
			t.Fatal(err)
		}
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		defer w.Close()
		done := fakeAttacher(t, dir, int(r.Fd()))
		_, err = ln.accept(context.Background(), 5*time.Second, 1000)
		if err == nil || !strings.Contains(err.Error(), "not a terminal") {
			t.Errorf("accept: %v", err)
		}
		<-done
	})
	t.Run("a master", func(t *testing.T) {
		ln, err := listenAttach(dir, testToken)
		if err != nil {
			t.Fatal(err)
		}
		master, _ := testPTY(t)
		done := fakeAttacher(t, dir, int(master.Fd()))
		_, err = ln.accept(context.Background(), 5*time.Second, 1000)
		if err == nil || !strings.Contains(err.Error(), "not a terminal of /dev/pts") { // /dev/ptmx's own device
			t.Errorf("accept: %v", err)
		}
		<-done
	})
	t.Run("someone else's terminal", func(t *testing.T) {
		ln, err := listenAttach(dir, testToken)
		if err != nil {
			t.Fatal(err)
		}
		_, slave := testPTY(t)
		if err := os.Chown(slave.Name(), 1234, -1); err != nil {
			t.Fatal(err)
		}
		done := fakeAttacher(t, dir, int(slave.Fd()))
		_, err = ln.accept(context.Background(), 5*time.Second, 1000)
		if err == nil || !strings.Contains(err.Error(), "belongs to uid 1234") {
			t.Errorf("accept: %v", err)
		}
		<-done
	})
	t.Run("not a pseudo-terminal", func(t *testing.T) {
		ln, err := listenAttach(dir, testToken)
		if err != nil {
			t.Fatal(err)
		}
		null, err := os.OpenFile("/dev/null", os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer null.Close()
		done := fakeAttacher(t, dir, int(null.Fd()))
		_, err = ln.accept(context.Background(), 5*time.Second, 1000)
		if err == nil || !strings.Contains(err.Error(), "not a terminal of /dev/pts") {
			t.Errorf("accept: %v", err)
		}
		<-done
	})
	t.Run("terminals beyond the account's cap", func(t *testing.T) {
		// MAX_SESSIONS_PER_ACCOUNT=1: one terminal helper may wait for
		// its token, a second is refused at once.
		_, first := testPTY(t)
		waiting := make(chan error, 1)
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			waiting <- Attach(ctx, AttachOptions{PolicyPath: policy, StateDir: dir, Account: Account{UID: 1000}, Terminal: first, Limit: time.Minute})
		}()
		ok, _ := waitUntil(5*time.Second, func() bool {
			_, err := os.Stat(filepath.Join(string(dir), "serve-tty-u1000-slot-0.pid"))
			return err == nil
		})
		if !ok {
			t.Fatal("the first terminal helper took no slot")
		}
		_, second := testPTY(t)
		if err := attach(dir, policy, second, 1000, time.Minute); !errors.Is(err, ErrTooManySessions) {
			t.Errorf("second terminal helper: %v", err)
		}
		cancel()
		if err := <-waiting; !errors.Is(err, ErrEnded) {
			t.Errorf("first terminal helper, ended: %v", err)
		}
	})
	t.Run("two descriptors", func(t *testing.T) {
		ln, err := listenAttach(dir, testToken)
		if err != nil {
			t.Fatal(err)
		}
		_, slave := testPTY(t)
		fd := int(slave.Fd())
		done := fakeAttacher(t, dir, fd, fd)
		_, err = ln.accept(context.Background(), 5*time.Second, 1000)
		if err == nil || !strings.Contains(err.Error(), "sent 2 descriptors, not one") {
			t.Errorf("accept: %v", err)
		}
		<-done
	})
}

// fakeAttacher sends the descriptors fds as uid 1000 to testToken's
// socket, as a hostile attaching process could; done is closed once the
// link has answered and closed the connection.
func fakeAttacher(t *testing.T, dir rundir.Dir, fds ...int) (done chan struct{}) {
	done = make(chan struct{})
	go func() {
		defer close(done)
		conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: attachPath(dir, testToken), Net: "unix"})
		if err != nil {
			t.Errorf("dial: %v", err)
			return
		}
		defer conn.Close()
		if _, _, err := conn.WriteMsgUnix([]byte("uid 1000\n"), unix.UnixRights(fds...), nil); err != nil {
			t.Errorf("send: %v", err)
		}
		io.Copy(io.Discard, conn)
	}()
	return done
}

// The sockets' directory must be root's own, that no one else may enter:
// a directory others can enter would let them find and reach a link's
// socket.
func TestListenAttachChecksItsDirectory(t *testing.T) {
	dir := stateDir(t)
	open := filepath.Join(string(dir), "open")
	if err := os.Mkdir(open, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o755); err != nil { // whatever the umask
		t.Fatal(err)
	}
	if _, err := listenAttach(rundir.Dir(open), testToken); err == nil || !strings.Contains(err.Error(), "must be a directory that only uid 0 may enter") {
		t.Errorf("listen in a 0755 directory: %v", err)
	}
	link := filepath.Join(string(dir), "link")
	if err := os.Symlink(t.TempDir(), link); err != nil {
		t.Fatal(err)
	}
	if _, err := listenAttach(rundir.Dir(link), testToken); err == nil || !strings.Contains(err.Error(), "must be a directory") {
		t.Errorf("listen through a symlink: %v", err)
	}
	if _, err := listenAttach(dir, "not-a-token"); err == nil {
		t.Error("a bad token was taken")
	}
}

// waitUntil polls cond every 10 ms until it holds or limit passes.
func waitUntil(limit time.Duration, cond func() bool) (bool, time.Duration) {
	begin := time.Now()
	for time.Since(begin) < limit {
		if cond() {
			return true, time.Since(begin)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return cond(), time.Since(begin)
}

// The interface pppd's log names is what the server's changes are applied
// to: only a ppp unit is taken.
func TestCheckIface(t *testing.T) {
	for _, ok := range []string{"ppp0", "ppp12", "ppp999999"} {
		if err := checkIface(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "ppp", "all", "default", "eth0", "ppp0\nx", "ppp1/../all", "ppp-1", "ppp1234567"} {
		if err := checkIface(bad); err == nil {
			t.Errorf("%q taken as a ppp unit", bad)
		}
	}
}
