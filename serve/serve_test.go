package serve

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/vpn-pppssh/vpn-pppssh/internal/rundir"
	"github.com/vpn-pppssh/vpn-pppssh/pppssh"
)

func TestRouterConfig(t *testing.T) {
	req := pppssh.Request{Peer: netip.MustParseAddr("198.51.100.1"), Routes: []netip.Prefix{netip.MustParsePrefix("198.18.0.0/24")}}
	got := fmt.Sprintf("%+v", routerConfig(req, "ppp3"))
	want := "{Iface:ppp3 Networks:[198.18.0.0/24] Masquerade:[] Forwarding:true DefaultRoute:false Carrier:invalid IP IPv6:false Forwarding6:false Gateway:invalid IP Gateway6:invalid IP SourceCheck:true}"
	if got != want {
		t.Errorf("routes only:\n got %s\nwant %s", got, want)
	}
	req.Masquerade = true
	got = fmt.Sprintf("%+v", routerConfig(req, "ppp3").Masquerade)
	if got != "[198.51.100.1/32 198.18.0.0/24]" {
		t.Errorf("masquerade sources %s", got)
	}
	if c := routerConfig(pppssh.Request{Peer: req.Peer, Masquerade: true}, "ppp0"); !c.Forwarding {
		t.Errorf("masquerade alone does not forward: %+v", c)
	}
	if c := routerConfig(pppssh.Request{Peer: req.Peer}, "ppp0"); c.Forwarding || len(c.Masquerade)+len(c.Networks) != 0 || !c.SourceCheck {
		t.Errorf("a bare request: %+v, want only the source check", c)
	}
	// IPv6: its forwarding, its masquerade source, its source check; in
	// ethernet mode the client is the next hop to its networks.
	v6 := pppssh.Request{Mode: pppssh.ModeEthernet, Peer: req.Peer, Peer6: netip.MustParseAddr("2001:db8:6::2"), Masquerade: true,
		Routes: []netip.Prefix{netip.MustParsePrefix("2001:db8:3::/64")}}
	// A link that carries IPv6 but routes only IPv4 beyond its ends
	// leaves IPv6 forwarding alone.
	if c := routerConfig(pppssh.Request{Peer: req.Peer, Peer6: v6.Peer6, Forward: true, Routes: req.Routes}, "ppp0"); !c.Forwarding || c.Forwarding6 {
		t.Errorf("IPv4 routes only: forwarding %v, IPv6 forwarding %v; want true, false", c.Forwarding, c.Forwarding6)
	}
	if c := routerConfig(pppssh.Request{Peer: req.Peer, Peer6: v6.Peer6, Forward6: true}, "ppp0"); c.Forwarding || !c.Forwarding6 {
		t.Errorf("IPv6 networks only: forwarding %v, IPv6 forwarding %v; want false, true", c.Forwarding, c.Forwarding6)
	}
	c := routerConfig(v6, "tap0")
	if got := fmt.Sprintf("%v %v %v %v %v %v", c.IPv6, c.Forwarding6, c.SourceCheck, c.Gateway, c.Gateway6, c.Masquerade); got != "true true true 198.51.100.1 2001:db8:6::2 [198.51.100.1/32 2001:db8:6::2/128 2001:db8:3::/64]" {
		t.Errorf("IPv6 in ethernet mode: %s", got)
	}
}

// server is a state directory and policy for Run.
type server struct {
	dir    string
	policy string
	state  rundir.Dir
	held   []string // names of the other sessions' files
}

func newServer(t *testing.T, policy string) *server {
	t.Helper()
	s := &server{dir: t.TempDir()}
	s.policy = filepath.Join(s.dir, "server.conf")
	s.state = rundir.Dir(filepath.Join(s.dir, "run"))
	if policy != "" {
		if err := os.WriteFile(s.policy, []byte(policy), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// run runs the server half on pipes as account uid with a request line
// ("" sends nothing and keeps the pipe open) and returns its answer.
func (s *server) run(t *testing.T, uid int, request string, kernel hostChecker) (string, error) {
	t.Helper()
	return s.runWith(t, uid, request, kernel, nil)
}

// runWith is run with a change to the options (stderr, loggers).
func (s *server) runWith(t *testing.T, uid int, request string, kernel hostChecker, change func(*Options)) (string, error) {
	t.Helper()
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer inR.Close()
	defer inW.Close()
	defer outR.Close()
	if request != "" {
		inW.WriteString(request + "\n")
		inW.Close()
	}
	if kernel == nil {
		kernel = func(pppssh.Policy, pppssh.Request) error { return nil }
	}
	o := Options{
		PolicyPath: s.policy, StateDir: s.state, Account: Account{UID: uid, Name: "u" + strconv.Itoa(uid)},
		Stdin: inR, Stdout: outW, Log: slog.New(slog.DiscardHandler),
		RequestTimeout: 500 * time.Millisecond, kernel: kernel,
	}
	if change != nil {
		change(&o)
	}
	err = Run(context.Background(), o)
	outW.Close()
	line, _ := bufio.NewReader(outR).ReadString('\n')
	return strings.TrimSpace(line), err
}

func request(link, local, peer, extra string) string {
	return fmt.Sprintf(`{"v":1,"link":%q,"ipparam":"vpn","local":%q,"peer":%q%s}`, link, local, peer, extra)
}

const (
	labPolicy = "ALLOW_PEERS=198.51.100.0/24\nALLOW_MASQUERADE=yes\nALLOW_FORWARDING=yes\nALLOW_NETWORKS=198.18.0.0/15\nPPPD=/bin/true\n"
	refusal   = "vpn-pppssh-serve error: "
)

// wantRefusal checks the answer and that nothing is left in the state
// directory but the host lock.
func (s *server) wantRefusal(t *testing.T, answer string, err error, want string) {
	t.Helper()
	if err == nil || !strings.HasPrefix(answer, refusal) || !strings.Contains(answer, want) {
		t.Errorf("answer %q (err %v), want a refusal with %q", answer, err, want)
	}
	ents, _ := os.ReadDir(string(s.state))
	for _, e := range ents {
		if e.Name() != "host.lock" && !s.isHeld(e.Name()) {
			t.Errorf("a refusal left %s behind", e.Name())
		}
	}
}

func TestRunRefusesBeforeStartingAnything(t *testing.T) {
	s := newServer(t, "ALLOW_PEERS=198.51.100.0/24\nALLOW_MASQUERADE=no\n")
	answer, err := s.run(t, 1000, request("a", "198.51.100.2", "198.51.100.1", `,"masquerade":true`), nil)
	s.wantRefusal(t, answer, err, "masquerade needs ALLOW_MASQUERADE=yes in "+s.policy+" (it says ALLOW_MASQUERADE=no)")
	answer, err = s.run(t, 1000, `{"v":1,"link":"a","pppd":"/bin/sh"}`, nil)
	s.wantRefusal(t, answer, err, "malformed request")

	s = newServer(t, "ALLOW_PEERS=198.51.100.0/24\nALLOW_MASQUERADE=yes\nALLOW_FORWARDING=no\n")
	answer, err = s.run(t, 1000, request("a", "198.51.100.2", "198.51.100.1", `,"masquerade":true`), nil)
	s.wantRefusal(t, answer, err, "masquerade needs forwarding, which needs ALLOW_FORWARDING=yes")

	s = newServer(t, "")
	answer, err = s.run(t, 1000, request("a", "10.9.0.1", "10.9.0.2", `,"masquerade":true`), nil)
	s.wantRefusal(t, answer, err, "masquerade needs ALLOW_MASQUERADE=yes in "+s.policy+" (the file does not exist)")

	s = newServer(t, labPolicy)
	answer, err = s.run(t, 1000, request("a", "198.51.100.2", "198.51.100.1", ""), func(pppssh.Policy, pppssh.Request) error {
		return errors.New("peer 198.51.100.1 is an address of this server (eth0)")
	})
	s.wantRefusal(t, answer, err, "peer 198.51.100.1 is an address of this server (eth0)")
}

func TestRunGivesUpOnASilentSession(t *testing.T) {
	s := newServer(t, labPolicy)
	begin := time.Now()
	answer, err := s.run(t, 1000, "", nil)
	if took := time.Since(begin); took > 5*time.Second {
		t.Errorf("took %v to give up", took)
	}
	s.wantRefusal(t, answer, err, "no request arrived in time: none within 500ms")
}

func TestRunAcceptsAndRunsPPPD(t *testing.T) {
	s := newServer(t, labPolicy)
	answer, err := s.run(t, 1000, request("a", "198.51.100.2", "198.51.100.1", ""), nil)
	if answer != "vpn-pppssh-serve ok" || err != nil {
		t.Fatalf("answer %q, err %v", answer, err)
	}
	s.wantRefusal(t, refusal+"-", errors.New("-"), "-") // only checks that nothing is left
}

// holder is another live session: a process that holds name's lock (the
// flock is on a descriptor it inherited) and its owner record.
func (s *server) holder(t *testing.T, name string, o owner) *exec.Cmd {
	t.Helper()
	if err := os.MkdirAll(string(s.state), 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(string(s.state), name+".pid"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sleep", "60")
	cmd.ExtraFiles = []*os.File{f}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if _, err := f.WriteString(strconv.Itoa(cmd.Process.Pid) + "\n"); err != nil {
		t.Fatal(err)
	}
	o.Pid = cmd.Process.Pid
	s.held = append(s.held, name)
	if err := writeOwner(s.state, name, o); err != nil {
		t.Fatal(err)
	}
	return cmd
}

func (s *server) isHeld(file string) bool {
	for _, n := range s.held {
		if file == n+".pid" || file == n+".owner" {
			return true
		}
	}
	return false
}

func alive(cmd *exec.Cmd) bool { return cmd.Process.Signal(syscall.Signal(0)) == nil }

func TestOnlyTheSameAccountAndLinkTakesOver(t *testing.T) {
	held := owner{UID: 1000, Link: "office", Local: netip.MustParseAddr("198.51.100.2"), Peer: netip.MustParseAddr("198.51.100.1"), Claimed: true}
	for _, c := range []struct {
		name string
		uid  int
		link string
	}{{"another account", 1001, "office"}, {"another link name", 1000, "home"}, {"root, another link", 0, "home"}} {
		t.Run(c.name, func(t *testing.T) {
			s := newServer(t, labPolicy)
			h := s.holder(t, "serve-198.51.100.1", held)
			answer, err := s.run(t, c.uid, request(c.link, "198.51.100.2", "198.51.100.1", ""), nil)
			if !errors.Is(err, ErrInUse) || answer != refusal+"peer 198.51.100.1 is in use by another session (another account or link name), which was left running" {
				t.Errorf("answer %q, err %v", answer, err)
			}
			if !alive(h) {
				t.Errorf("the other session was ended")
			}
		})
	}
	t.Run("same account and link", func(t *testing.T) {
		s := newServer(t, labPolicy)
		h := s.holder(t, "serve-198.51.100.1", held)
		answer, err := s.run(t, 1000, request("office", "198.51.100.2", "198.51.100.1", ""), nil)
		if answer != "vpn-pppssh-serve ok" || err != nil {
			t.Errorf("answer %q, err %v", answer, err)
		}
		var ee *exec.ExitError
		if err := h.Wait(); !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
			t.Errorf("the previous session ended with %v, want SIGTERM", err)
		}
	})
	t.Run("a record that is not the holder's", func(t *testing.T) {
		s := newServer(t, labPolicy)
		h := s.holder(t, "serve-198.51.100.1", held)
		stale := held
		stale.Pid = h.Process.Pid + 100000 // left by a helper that died
		if err := writeOwner(s.state, "serve-198.51.100.1", stale); err != nil {
			t.Fatal(err)
		}
		answer, err := s.run(t, 1000, request("office", "198.51.100.2", "198.51.100.1", ""), nil)
		if !errors.Is(err, ErrInUse) || !alive(h) {
			t.Errorf("answer %q, err %v, holder alive %v", answer, err, alive(h))
		}
	})
}

// Another live session's tunnel and networks are claimed: a request that
// collides with them is refused though the kernel does not show them yet.
func TestClaimsOfOtherSessions(t *testing.T) {
	other := owner{UID: 1001, User: "otheruser", Link: "theirlink", Local: netip.MustParseAddr("198.51.100.6"), Peer: netip.MustParseAddr("198.51.100.5"),
		Routes: []netip.Prefix{netip.MustParsePrefix("198.18.0.0/24")}, Claimed: true}
	for _, c := range []struct{ name, req, want string }{
		{"network over their network", request("a", "198.51.100.2", "198.51.100.1", `,"routes":["198.18.0.0/16"]`), "network 198.18.0.0/16 is in use by another session"},
		{"local is their peer", request("a", "198.51.100.5", "198.51.100.1", ""), "local 198.51.100.5 is in use by another session"},
		{"network over their tunnel", request("a", "198.51.100.2", "198.51.100.1", `,"routes":["198.18.0.0/24"]`), "network 198.18.0.0/24 is in use"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newServer(t, labPolicy)
			s.holder(t, "serve-198.51.100.5", other)
			answer, err := s.run(t, 1000, c.req, nil)
			s.wantRefusal(t, answer, err, c.want)
			// Nothing of the other session that this one did not ask
			// for itself: its addresses, networks, account.
			for _, theirs := range []string{"198.51.100.6", "198.51.100.5", "198.18.0.0/24", "1001", "otheruser", "theirlink"} {
				if !strings.Contains(c.req, theirs) && strings.Contains(strings.TrimPrefix(answer, refusal), theirs) {
					t.Errorf("the refusal %q shows the other session's %s", answer, theirs)
				}
			}
		})
	}
	t.Run("free", func(t *testing.T) {
		s := newServer(t, labPolicy)
		s.holder(t, "serve-198.51.100.5", other)
		answer, err := s.run(t, 1000, request("a", "198.51.100.2", "198.51.100.1", `,"routes":["198.19.0.0/24"]`), nil)
		if answer != "vpn-pppssh-serve ok" || err != nil {
			t.Errorf("answer %q, err %v", answer, err)
		}
	})
}

func TestMaxSessions(t *testing.T) {
	s := newServer(t, labPolicy+"MAX_SESSIONS=2\n")
	s.holder(t, "serve-slot-0", owner{})
	s.holder(t, "serve-slot-1", owner{})
	answer, err := s.run(t, 1000, request("a", "198.51.100.2", "198.51.100.1", ""), nil)
	if !errors.Is(err, ErrTooManySessions) || answer != refusal+"too many sessions: all MAX_SESSIONS=2 in "+s.policy+" are in use" {
		t.Errorf("answer %q, err %v", answer, err)
	}
	// One account holding every session: MAX_SESSIONS is what to raise.
	s = newServer(t, labPolicy+"MAX_SESSIONS=2\n")
	s.holder(t, "serve-u1000-slot-0", owner{})
	s.holder(t, "serve-u1000-slot-1", owner{})
	answer, err = s.run(t, 1000, request("a", "198.51.100.2", "198.51.100.1", ""), nil)
	if !errors.Is(err, ErrTooManySessions) || answer != refusal+"too many sessions: all MAX_SESSIONS=2 in "+s.policy+" are in use" {
		t.Errorf("one account holding all: answer %q, err %v", answer, err)
	}
	s = newServer(t, labPolicy+"MAX_SESSIONS=2\n")
	s.holder(t, "serve-slot-1", owner{})
	if answer, err := s.run(t, 1000, request("a", "198.51.100.2", "198.51.100.1", ""), nil); err != nil {
		t.Errorf("a free slot: answer %q, err %v", answer, err)
	}
}

// MAX_SESSIONS_PER_ACCOUNT: an account that holds its own slots is
// refused, naming the key; another account still gets in.
func TestMaxSessionsPerAccount(t *testing.T) {
	s := newServer(t, labPolicy+"MAX_SESSIONS_PER_ACCOUNT=2\n")
	s.holder(t, "serve-u1000-slot-0", owner{})
	s.holder(t, "serve-u1000-slot-1", owner{})
	answer, err := s.run(t, 1000, request("a", "198.51.100.2", "198.51.100.1", ""), nil)
	if !errors.Is(err, ErrTooManySessions) || answer != refusal+"too many sessions of this account: all MAX_SESSIONS_PER_ACCOUNT=2 in "+s.policy+" are in use" {
		t.Errorf("answer %q, err %v", answer, err)
	}
	s.wantRefusal(t, answer, err, "MAX_SESSIONS_PER_ACCOUNT=2")
	if answer, err := s.run(t, 1001, request("a", "198.51.100.2", "198.51.100.1", ""), nil); err != nil {
		t.Errorf("another account: answer %q, err %v", answer, err)
	}
	// The account's slot names are valid lock names for any uid.
	s = newServer(t, labPolicy+"MAX_SESSIONS=1024\nMAX_SESSIONS_PER_ACCOUNT=1024\n")
	for i := range 1023 {
		s.holder(t, fmt.Sprintf("serve-u4294967295-slot-%d", i), owner{})
	}
	if answer, err := s.run(t, 4294967295, request("a", "198.51.100.2", "198.51.100.1", ""), nil); err != nil {
		t.Errorf("the last slot of the highest uid: answer %q, err %v", answer, err)
	}
}

// A record of another session that cannot be read refuses the session
// (it might claim what this one asks for), without naming that session.
func TestClaimFailsClosed(t *testing.T) {
	other := owner{UID: 1001, Link: "b", Local: netip.MustParseAddr("198.51.100.6"), Peer: netip.MustParseAddr("198.51.100.5"), Claimed: true}
	for _, c := range []struct {
		name  string
		spoil func(t *testing.T, s *server)
	}{
		{"corrupt owner record", func(t *testing.T, s *server) {
			if err := os.WriteFile(ownerPath(s.state, "serve-198.51.100.5"), []byte("{"), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"lock held without a pid", func(t *testing.T, s *server) {
			if err := os.Truncate(filepath.Join(string(s.state), "serve-198.51.100.5.pid"), 0); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newServer(t, labPolicy)
			s.holder(t, "serve-198.51.100.5", other)
			c.spoil(t, s)
			var others strings.Builder
			answer, err := s.runWith(t, 1000, request("a", "198.51.100.2", "198.51.100.1", ""), nil, func(o *Options) {
				o.Others = slog.New(slog.NewTextHandler(&others, nil))
			})
			s.wantRefusal(t, answer, err, "the server cannot read the records of its other sessions (see its system log)")
			if strings.Contains(answer, "198.51.100.5") {
				t.Errorf("the refusal names the other session: %q", answer)
			}
			if !strings.Contains(others.String(), "serve-198.51.100.5") {
				t.Errorf("the server's log does not say which record: %q", others.String())
			}
		})
	}
}

// The host lock is waited for only so long: a holder that does not let go
// (a helper stopped with SIGSTOP) makes sessions fail, not hang.
func TestHostLockIsBounded(t *testing.T) {
	s := newServer(t, labPolicy)
	if err := os.MkdirAll(string(s.state), 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(string(s.state), "host.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	defer func(d time.Duration) { hostLockWait = d }(hostLockWait)
	hostLockWait = 300 * time.Millisecond
	type result struct {
		answer string
		err    error
	}
	got := make(chan result, 1)
	go func() {
		answer, err := s.run(t, 1000, request("a", "198.51.100.2", "198.51.100.1", ""), nil)
		got <- result{answer, err}
	}()
	select {
	case r := <-got:
		if !errors.Is(r.err, ErrHostBusy) || !strings.Contains(r.answer, "the server is busy: another process held the host lock") {
			t.Errorf("answer %q, err %v", r.answer, r.err)
		}
	case <-time.After(10 * time.Second):
		f.Close() // let the session go, so the test can end
		<-got
		t.Fatal("still waiting for the host lock after 10s")
	}
}

// Dead sessions' leftovers are cleaned, half-written owner records too,
// and what is said about them goes to the server's log, never to this
// session's client.
func TestCleanupDeadGoesToTheServersLog(t *testing.T) {
	s := newServer(t, labPolicy)
	if err := os.MkdirAll(string(s.state), 0o700); err != nil {
		t.Fatal(err)
	}
	dead := "serve-198.51.100.9"
	for _, f := range []string{ownerPath(s.state, dead), ownerPath(s.state, dead) + ".tmp", filepath.Join(string(s.state), dead+".journal"),
		ownerPath(s.state, "serve-198.51.100.13") + ".tmp"} { // died while writing its first record
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var mine, others strings.Builder
	answer, err := s.runWith(t, 1000, request("a", "198.51.100.2", "198.51.100.1", ""), nil, func(o *Options) {
		o.Log = slog.New(slog.NewTextHandler(&mine, nil))
		o.Others = slog.New(slog.NewTextHandler(&others, nil))
	})
	if answer != "vpn-pppssh-serve ok" || err != nil {
		t.Fatalf("answer %q, err %v", answer, err)
	}
	s.wantRefusal(t, refusal+"-", errors.New("-"), "-") // only checks that nothing is left
	if strings.Contains(mine.String(), "198.51.100.9") {
		t.Errorf("this session's log tells of the dead one:\n%s", mine.String())
	}
	if !strings.Contains(others.String(), "session="+dead) {
		t.Errorf("the server's log does not tell of the dead session: %q", others.String())
	}
}

// A pppd that comes up with other addresses than the request's (the
// server's own options accept the client's) gets nothing applied and is
// ended; the client is told both pairs.
func TestNegotiatedAddressesMustBeTheRequests(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "pppd")
	script := "#!/bin/sh\nprintf 'Using interface ppp9\\nlocal  IP address 198.51.100.2\\nremote IP address 198.51.100.77\\n' >&3\nexec sleep 30\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	s := newServer(t, strings.Replace(labPolicy, "PPPD=/bin/true", "PPPD="+fake, 1))
	errR, errW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer errR.Close()
	stderr := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(errR)
		stderr <- string(b)
	}()
	type result struct {
		answer string
		err    error
	}
	got := make(chan result, 1)
	go func() {
		answer, err := s.runWith(t, 1000, request("a", "198.51.100.2", "198.51.100.1", ""), nil, func(o *Options) { o.Stderr = errW })
		errW.Close()
		got <- result{answer, err}
	}()
	var r result
	select {
	case r = <-got:
	case <-time.After(15 * time.Second):
		t.Fatal("the session with other addresses was not ended within 15s")
	}
	if r.answer != "vpn-pppssh-serve ok" || !errors.Is(r.err, ErrNegotiated) {
		t.Errorf("answer %q, err %v", r.answer, r.err)
	}
	out := <-stderr
	want := pppssh.ServerFailedMarker + "pppd negotiated other addresses than the request's: local 198.51.100.2 and peer 198.51.100.77, not the requested local 198.51.100.2 and peer 198.51.100.1"
	if !strings.Contains(out, want) || strings.Contains(out, pppssh.ServerReadyMarker) {
		t.Errorf("stderr:\n%s\nwant the line %q and no ready marker", out, want)
	}
	s.wantRefusal(t, refusal+"-", errors.New("-"), "-") // nothing left: no journal
}

// A client whose pppd renegotiates after the link was up (its addresses
// may now be others than the policy saw) loses the link; the server's
// changes go with it.
func TestRenegotiationEndsTheLink(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "pppd")
	up := `Using interface ppp9\nlocal  IP address 198.51.100.2\nremote IP address 198.51.100.1\n`
	// As pppd logs a renegotiation: its link statistics as IPCP goes
	// down, then the new round.
	again := `Connect time 0.1 minutes.\nSent 100 bytes, received 200 bytes.\nlocal  IP address 198.51.100.2\n`
	script := "#!/bin/sh\nprintf '" + up + "' >&3\nprintf '" + again + "' >&3\nprintf 'remote IP address 198.51.100.77\\n' >&3\nexec sleep 30\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	s := newServer(t, strings.Replace(labPolicy, "PPPD=/bin/true", "PPPD="+fake, 1))
	got := make(chan error, 1)
	go func() {
		// A network namespace of this thread's own, with a ppp9 for the
		// fake pppd's link: the thread is never unlocked, so it ends
		// with this goroutine and takes the namespace with it.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			got <- fmt.Errorf("a network namespace for the test: %w", err)
			return
		}
		ppp9 := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "ppp9"}, PeerName: "ppp9peer"}
		if err := netlink.LinkAdd(ppp9); err != nil {
			got <- fmt.Errorf("a ppp9 for the test: %w", err)
			return
		}
		if err := netlink.LinkSetUp(ppp9); err != nil {
			got <- fmt.Errorf("setting ppp9 up: %w", err)
			return
		}
		devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			got <- err
			return
		}
		defer devnull.Close()
		_, err = s.runWith(t, 1000, request("a", "198.51.100.2", "198.51.100.1", ""), nil, func(o *Options) { o.Stderr = devnull })
		got <- err
	}()
	select {
	case err := <-got:
		if !errors.Is(err, ErrRenegotiated) {
			t.Errorf("err %v, want ErrRenegotiated", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the renegotiated session was not ended within 15s")
	}
	s.wantRefusal(t, refusal+"-", errors.New("-"), "-") // nothing left
}

// Sessions' claims collide on IPv6 addresses and, in ethernet mode, on the
// shared subnets the server's devices get routes for; the refusal names
// only what the request asked for.
func TestConflictIPv6AndSubnets(t *testing.T) {
	a := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	theirs := owner{Local: a("198.51.100.2"), Peer: a("198.51.100.1"), Local6: a("2001:db8:6::1"), Peer6: a("2001:db8:6::2")}
	eth := owner{Local: a("198.51.100.66"), Peer: a("198.51.100.67"), Mode: pppssh.ModeEthernet, Bits: 26}
	for _, c := range []struct {
		o    owner
		req  pppssh.Request
		want string // "" no conflict
	}{
		{theirs, pppssh.Request{Local: a("198.51.100.10"), Peer: a("198.51.100.11"), Local6: a("2001:db8:6::10"), Peer6: a("2001:db8:6::2")}, "peer 2001:db8:6::2 is in use"},
		{theirs, pppssh.Request{Local: a("198.51.100.10"), Peer: a("198.51.100.11"), Local6: a("2001:db8:6::10"), Peer6: a("2001:db8:6::11")}, ""},
		{eth, pppssh.Request{Mode: pppssh.ModeEthernet, Bits: 27, Local: a("198.51.100.98"), Peer: a("198.51.100.99")}, "local 198.51.100.98 is in use"},
		{eth, pppssh.Request{Mode: pppssh.ModeEthernet, Bits: 24, Local: a("198.51.100.130"), Peer: a("198.51.100.131")}, "subnet 198.51.100.0/24 is in use"},
		{eth, pppssh.Request{Mode: pppssh.ModeEthernet, Bits: 26, Local: a("198.51.100.130"), Peer: a("198.51.100.131")}, ""},
		{eth, pppssh.Request{Local: a("198.51.100.70"), Peer: a("198.51.100.71")}, "local 198.51.100.70 is in use"},
	} {
		err := conflict(c.req, c.o)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%v: %v", c.req, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%v: %v, want %q", c.req, err, c.want)
		}
	}
}
