package lab_test

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vpn-pppssh/vpn-pppssh/lab"
)

// serveHelper returns the pid of the one running server half
// (`vpn-pppssh serve`) and the sudo processes above it, nearest first.
func serveHelper(t *testing.T) (int, []int) {
	t.Helper()
	var helpers []string
	for _, p := range lab.Processes("vpn-pppssh") {
		pid, args, _ := strings.Cut(p, " ")
		if tty, _ := os.Readlink("/proc/" + pid + "/fd/0"); strings.HasPrefix(tty, "/dev/pts/") {
			continue // the helper of the link's terminal (SERVER_PTY), which waits for the other
		}
		if strings.HasSuffix(args, " serve") {
			helpers = append(helpers, pid)
		}
	}
	if len(helpers) != 1 {
		t.Fatalf("server halves running: %v, want one", helpers)
	}
	helper, err := strconv.Atoi(helpers[0])
	if err != nil {
		t.Fatal(err)
	}
	var sudos []int
	for pid := parentPid(helpers[0]); pid != "" && comm(pid) == "sudo"; pid = parentPid(pid) {
		n, err := strconv.Atoi(pid)
		if err != nil {
			t.Fatal(err)
		}
		sudos = append(sudos, n)
	}
	if len(sudos) == 0 {
		t.Fatalf("the server half %d does not run under sudo (parent %s)", helper, parentPid(helpers[0]))
	}
	return helper, sudos
}

func comm(pid string) string {
	b, _ := os.ReadFile("/proc/" + pid + "/comm")
	return strings.TrimSpace(string(b))
}

// procState is the state letter of pid (R, S, T for stopped, Z), or ""
// when it is gone.
func procState(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2 : i+3]
	}
	return "?"
}

// killAs sends sig to the nearest of pids that account may signal, with
// kill(1) run as that account: what the client's account can do to its own
// sudo. It returns the pid it signalled.
func killAs(t *testing.T, account string, sig syscall.Signal, pids []int) int {
	t.Helper()
	u, err := user.Lookup(account)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	var tried []string
	for _, pid := range pids {
		cmd := exec.Command("kill", "-s", strconv.Itoa(int(sig)), strconv.Itoa(pid))
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Logf("%s sent %v to sudo %d", account, sig, pid)
			return pid
		}
		tried = append(tried, fmt.Sprintf("%d: %v: %s", pid, err, strings.TrimSpace(string(out))))
	}
	t.Fatalf("%s could not send %v to any of its sudo processes: %s", account, sig, strings.Join(tried, "; "))
	return 0
}

// The client's account can signal its sudo, which relays the signal to the
// server half. Stop signals are ignored (a stopped helper would hold its
// locks), and SIGQUIT ends the session as cleanly as a hangup: pppd ended,
// the server's changes undone, records, lock and slot released.
func TestServeSignalsRelayedBySudo(t *testing.T) {
	needLab(t)
	withPolicy(t, lab.Policy+"MAX_SESSIONS=1\n")
	// sudo turns SIGALRM into SIGHUP and SIGTERM to the command (and
	// SIGKILL later): the helper must be done by then.
	for _, sig := range []syscall.Signal{syscall.SIGQUIT, syscall.SIGALRM} {
		t.Run(sig.String(), func(t *testing.T) { endBySignal(t, sig) })
	}
}

func endBySignal(t *testing.T, end syscall.Signal) {
	before := lab.Snapshot(lab.ServerNS)
	conf := helperConf(t, "vpn", "CLIENT_NETWORKS="+lab.BehindClientNet, "PERSIST=no")
	mustStart(t, conf)
	ping(t, lab.ServerNS, lab.BehindClientIP)
	helper, sudos := serveHelper(t)
	pppds := serverPPPDs(t)
	if len(pppds) != 1 {
		t.Fatalf("server pppds %v, want one", pppds)
	}

	// SIGTSTP, SIGTTIN, SIGTTOU: ignored, the link and the helper go on.
	for _, sig := range []syscall.Signal{syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU} {
		killAs(t, lab.User, sig, sudos)
	}
	ping(t, lab.ServerNS, lab.BehindClientIP)
	if st := procState(helper); st == "T" || st == "" {
		t.Fatalf("after the stop signals the helper's state is %q", st)
	}

	// SIGQUIT: the helper must still act on it (it would not if a stop
	// signal had stopped it), and end everything in order.
	killAs(t, lab.User, end, sudos)
	ok, got := lab.WaitFor(15*time.Second, func() (bool, string) {
		return procState(helper) == "" && len(serverPPPDs(t)) == 0, fmt.Sprintf("helper %q, server pppds %v", procState(helper), serverPPPDs(t))
	})
	if !ok {
		t.Fatalf("15s after SIGQUIT: %s", got)
	}
	wantInterfaces(t, lab.ServerNS, 10*time.Second)
	ok, got = lab.WaitFor(10*time.Second, func() (bool, string) {
		s := lab.Snapshot(lab.ServerNS)
		return s == before, s
	})
	if !ok {
		t.Errorf("the server is not as before after SIGQUIT:\n--- before\n%s\n--- after\n%s", before, got)
	}
	for _, f := range []string{"serve-198.51.100.1.owner", "serve-198.51.100.1.pid", "serve-slot-0.pid"} {
		if _, err := os.Stat(runDir + "/" + f); !os.IsNotExist(err) {
			t.Errorf("%s left behind (%v)", f, err)
		}
	}
	// The slot is free (MAX_SESSIONS=1): a new session gets in.
	client(t, "-c", conf, "stop") // the client's own side, if its link is still winding down
	mustStart(t, conf)
	ping(t, lab.ServerNS, lab.BehindClientIP)
	client(t, "-c", conf, "stop")
	wantClean(t, 15*time.Second)
}

// MAX_SESSIONS_PER_ACCOUNT: an account that fills its own slots is
// refused, naming the key, and another account still gets in.
func TestServeMaxSessionsPerAccount(t *testing.T) {
	needLab(t)
	t.Cleanup(func() { wantClean(t, 20*time.Second) }) // runs last, once the sessions are closed
	withPolicy(t, lab.Policy+"MAX_SESSIONS_PER_ACCOUNT=2\n")
	// Two sessions of vpn, accepted and left idle (nothing speaks PPP
	// to their pppd).
	for i, peer := range []string{"198.51.100.1", "198.51.100.5"} {
		s := dialServe(t, lab.User)
		local := fmt.Sprintf("198.51.100.%d", 2+4*i)
		if err := s.Send(rawRequest(fmt.Sprintf("idle%d", i), local, peer, "")); err != nil {
			t.Fatal(err)
		}
		if answer, err := s.Answer(30 * time.Second); err != nil || answer != "vpn-pppssh-serve ok" {
			t.Fatalf("idle session %d: answer %q, err %v", i, answer, err)
		}
	}
	third := dialServe(t, lab.User)
	answer, err := third.Answer(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if want := refusal + "too many sessions of this account: all MAX_SESSIONS_PER_ACCOUNT=2 in " + lab.PolicyFile + " are in use"; answer != want {
		t.Errorf("vpn's third session: %q, want %q", answer, want)
	}
	other := dialServe(t, lab.OtherUser)
	if err := other.Send(rawRequest("other", "198.51.100.10", "198.51.100.9", "")); err != nil {
		t.Fatal(err)
	}
	if answer, err := other.Answer(30 * time.Second); err != nil || answer != "vpn-pppssh-serve ok" {
		t.Errorf("%s's session: answer %q, err %v", lab.OtherUser, answer, err)
	}
}
