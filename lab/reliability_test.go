package lab_test

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vpn-pppssh/vpn-pppssh/lab"
)

type linkStatus struct {
	Running     bool     `json:"running"`
	Pid         int      `json:"pid"`
	Phase       string   `json:"phase"`
	Redials     int      `json:"redials"`
	Goroutines  int      `json:"goroutines"`
	LastError   string   `json:"last_error"`
	Mode        string   `json:"mode"`
	Iface       string   `json:"iface"`
	ServerIface string   `json:"server_iface"`
	Server      string   `json:"server"`
	Via         string   `json:"via"`
	Forwards    []string `json:"forwards"`
	DNS         string   `json:"dns"`
}

// statusJSON runs status --json; output that is not the status object
// fails the test (a zero status would pass many checks by accident).
func statusJSON(t *testing.T, conf string) linkStatus {
	t.Helper()
	out, code := needLab(t).Client(t.Context(), "-c", conf, "--json", "status")
	var s linkStatus
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("status --json: exit %d: not a status object (%v): %q", code, err, out)
	}
	return s
}

// runningPid is the pid of the link's background process; a link that is
// not running fails the test rather than yielding 0.
func runningPid(t *testing.T, conf string) int {
	t.Helper()
	s := statusJSON(t, conf)
	if !s.Running || s.Pid <= 0 {
		t.Fatalf("the link is not running: %+v", s)
	}
	return s.Pid
}

// kill sends sig to pid, a process the test found for itself. A pid of 0
// or less would signal the test's own process group or every process, so
// it fails the test, as does a failed kill.
func kill(t *testing.T, pid int, sig syscall.Signal) {
	t.Helper()
	if pid <= 0 {
		t.Fatalf("refusing to send %v to pid %d", sig, pid)
	}
	if err := syscall.Kill(pid, sig); err != nil {
		t.Fatalf("sending %v to %d: %v", sig, pid, err)
	}
}

// onePPPD returns the pid of the only pppd whose arguments contain one of
// markers (topPPPDs); none or several fail the test.
func onePPPD(t *testing.T, what string, markers ...string) int {
	t.Helper()
	found, all := topPPPDs(t, markers...)
	if len(found) != 1 {
		t.Fatalf("want one %s pppd, found %v among: %q", what, found, all)
	}
	return found[0]
}

// topPPPDs are the pppd processes whose arguments contain one of markers,
// and every pppd as "pid args" for messages. A pppd on notty forks a
// helper (charshunt) with the same command line: a match whose parent is
// a match is that helper, not another pppd, and is left out.
func topPPPDs(t *testing.T, markers ...string) (found []int, all []string) {
	t.Helper()
	matched := map[int]bool{}
	for _, p := range lab.Processes("pppd") {
		all = append(all, p)
		pid, args, _ := strings.Cut(p, " ")
		if slices.ContainsFunc(markers, func(m string) bool { return strings.Contains(args+" ", m) }) {
			n, err := strconv.Atoi(pid)
			if err != nil || n <= 0 {
				t.Fatalf("bad pid in %q", p)
			}
			matched[n] = true
		}
	}
	for n := range matched {
		if !matched[ppidOf(n)] {
			found = append(found, n)
		}
	}
	return found, all
}

// ppidOf is the parent of pid, or 0 when pid is gone.
func ppidOf(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "PPid:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// serverPPPD returns the pid of the server's pppd: the bare one on notty,
// or the helper's, by its linkname, on notty or the link's terminal.
func serverPPPD(t *testing.T) int {
	t.Helper()
	return onePPPD(t, "server", " notty ", " linkname vpn-pppssh-in-")
}

// wantBack waits until the link is up again after at least redials redials,
// answers pings, and has exactly one interface on each side.
func wantBack(t *testing.T, conf string, redials int, within time.Duration) time.Duration {
	t.Helper()
	begin := time.Now()
	ok, last := lab.WaitFor(within, func() (bool, string) {
		s := statusJSON(t, conf)
		if s.Phase != "up" || s.Redials < redials {
			return false, fmt.Sprintf("%+v", s)
		}
		_, err := lab.InNS(lab.ClientNS, "ping", "-c", "1", "-W", "1", "198.51.100.2")
		return err == nil, fmt.Sprintf("%+v ping: %v", s, err)
	})
	if !ok {
		dumpLog(t, conf)
		t.Fatalf("not back within %v: %s", within, last)
	}
	took := time.Since(begin)
	wantInterfaces(t, lab.ClientNS, 0, "198.51.100.1 198.51.100.2")
	wantInterfaces(t, lab.ServerNS, 5*time.Second, "198.51.100.2 198.51.100.1")
	return took
}

// TestServerPPPDKilledComesBack: only the server's pppd dies; the SSH
// connection still answers, so the redial reuses it (no holdoff, no new
// login) and the link is back in about the time pppd takes to negotiate.
func TestServerPPPDKilledComesBack(t *testing.T) {
	conf := needLab(t).Config("vpn", 1)
	begin := time.Now()
	mustStart(t, conf)
	fresh := time.Since(begin)
	conn := sshConnection(t)
	kill(t, serverPPPD(t), syscall.SIGKILL)
	took := wantBack(t, conf, 1, time.Minute)
	if again := sshConnection(t); again != conn {
		t.Errorf("the redial made a new SSH connection (%s, was %s), though the old one still answered", again, conn)
	}
	t.Logf("back %v after the server's pppd was killed, on the same SSH connection; a fresh start took %v", took, fresh)
}

// sshConnection is the client's one established TCP connection to the
// server's SSH port, as "local -> remote".
func sshConnection(t *testing.T) string {
	t.Helper()
	out, err := lab.InNS(lab.ClientNS, "ss", "-tnH", "state", "established", "( dport = :22 )")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1 || lines[0] == "" {
		t.Fatalf("want one SSH connection from the client, found %d: %q", len(lines), out)
	}
	f := strings.Fields(lines[0])
	if len(f) < 4 {
		t.Fatalf("ss: %q", lines[0])
	}
	return f[len(f)-2] + " -> " + f[len(f)-1]
}

func TestSSHDRestartComesBack(t *testing.T) {
	l := needLab(t)
	conf := l.Config("vpn", 1)
	mustStart(t, conf)
	// All of sshd: the listener and the session's processes, as a restart
	// after a crash or a reboot would.
	if err := l.RestartSSHD(); err != nil {
		t.Fatal(err)
	}
	took := wantBack(t, conf, 1, time.Minute)
	t.Logf("back %v after sshd was restarted", took)
}

// The path goes silent for 45 s while the server loses the session.
func TestSilentPathRecovers(t *testing.T) {
	if testing.Short() {
		t.Skip("takes over a minute")
	}
	l := needLab(t)
	conf := l.Config("vpn", 1)
	mustStart(t, conf)
	begin := time.Now()
	if _, err := lab.Sh("ip", "-n", lab.ServerNS, "link", "set", "vpnlab1", "down"); err != nil {
		t.Fatal(err)
	}
	// The server loses the session, as after a reboot.
	if err := l.KillSessions(); err != nil {
		t.Fatal(err)
	}
	ok, last := lab.WaitFor(30*time.Second, func() (bool, string) {
		s := statusJSON(t, conf)
		return s.Phase != "up", fmt.Sprintf("%+v", s)
	})
	if !ok {
		t.Fatalf("the client did not notice the dead link within 30s: %s", last)
	}
	t.Logf("dead link noticed after %v", time.Since(begin).Round(time.Second))
	// Bounded by the silence itself, not a synchronisation: the path stays
	// down for 45 s in all.
	time.Sleep(time.Until(begin.Add(45 * time.Second)))
	wantInterfaces(t, lab.ClientNS, 0) // torn down while waiting: never two
	if _, err := lab.Sh("ip", "-n", lab.ServerNS, "link", "set", "vpnlab1", "up"); err != nil {
		t.Fatal(err)
	}
	took := wantBack(t, conf, 1, time.Minute)
	t.Logf("back %v after the path returned", took)
}

// hostile starts a link against the fake peer, which must fail within
// CONNECT_TIMEOUT and a margin with a message containing want.
func hostile(t *testing.T, mode, want string) {
	l := needLab(t)
	peer, err := lab.StartFakePeer(l.Dir)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	conf := l.Config("vpn", 1, "SERVER_PORT="+lab.FakePeerPort, "SERVER_USERNAME="+mode,
		"SSH_KNOWN_HOSTS="+peer.KnownHosts, "CONNECT_TIMEOUT=5")
	wantFailure(t, conf, 1, 12*time.Second, want)
}

func TestHostilePeerGarbage(t *testing.T) {
	hostile(t, "garbage", "link not up within CONNECT_TIMEOUT (5s)")
}

func TestHostilePeerEarlyClose(t *testing.T) {
	hostile(t, "early", "the server closed the session (it printed nothing)")
}

func TestHostilePeerStall(t *testing.T) {
	hostile(t, "stall", "link not up within CONNECT_TIMEOUT (5s)")
}

func TestHostilePeerDropsConnection(t *testing.T) {
	hostile(t, "drop", "SSH session")
}

// soakCycles is 50 with VPN_LAB_SOAK=1 (make soak), fewer in make test.
func soakCycles() int {
	if os.Getenv("VPN_LAB_SOAK") == "1" {
		return 50
	}
	return 3
}

// resources counts what a link could leak: interfaces and pppd processes
// on both sides, our routes, files under /run/vpn-pppssh.
func resources(t *testing.T) string {
	t.Helper()
	c, err := lab.PPPInterfaces(lab.ClientNS)
	if err != nil {
		t.Fatal(err)
	}
	s, err := lab.PPPInterfaces(lab.ServerNS)
	if err != nil {
		t.Fatal(err)
	}
	routes, err := lab.Sh("ip", "-n", lab.ClientNS, "route", "show", "proto", "158")
	if err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(runDir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var files []string
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".log") && e.Name() != "host.lock" {
			files = append(files, e.Name())
		}
	}
	return fmt.Sprintf("client ifs %d, server ifs %d, pppd %d, routes %q, files %v",
		len(c), len(s), len(lab.Processes("pppd")), strings.TrimSpace(routes), files)
}

func TestSoakStartStop(t *testing.T) {
	conf := helperConf(t, "vpn", "SERVER_NETWORKS="+lab.BehindServerNet, "SERVER_MASQUERADE=yes")
	before, snaps := resources(t), snapshots()
	n := soakCycles()
	for i := range n {
		if out, code := needLab(t).Client(t.Context(), "-c", conf, "start"); code != 0 {
			t.Fatalf("cycle %d: start: %s", i, out)
		}
		if out, code := needLab(t).Client(t.Context(), "-c", conf, "stop"); code != 0 {
			t.Fatalf("cycle %d: stop: %s", i, out)
		}
	}
	wantClean(t, 30*time.Second)
	wantSnapshots(t, snaps, 5*time.Second)
	if after := resources(t); after != before {
		t.Errorf("after %d start/stop cycles:\n before %s\n after  %s", n, before, after)
	}
	t.Logf("%d start/stop cycles: %s", n, resources(t))
}

func TestSoakServerPPPDKills(t *testing.T) {
	conf := helperConf(t, "vpn", "SERVER_NETWORKS="+lab.BehindServerNet, "SERVER_MASQUERADE=yes", "HOLDOFF_MAX=1")
	mustStart(t, conf)
	pid := runningPid(t, conf)
	fds := func() int {
		t.Helper()
		e, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		if err != nil || len(e) == 0 {
			t.Fatalf("open files of the background process %d: %d, %v", pid, len(e), err)
		}
		return len(e)
	}
	threads := func() string {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			t.Fatalf("background process %d: %v", pid, err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "Threads:") {
				return strings.TrimSpace(strings.TrimPrefix(l, "Threads:"))
			}
		}
		return "?"
	}
	fdsBefore, resBefore, gBefore := fds(), resources(t), statusJSON(t, conf).Goroutines
	if gBefore <= 0 {
		t.Fatalf("status reports %d goroutines: the goroutine check would check nothing", gBefore)
	}
	n := soakCycles()
	for i := range n {
		kill(t, serverPPPD(t), syscall.SIGKILL)
		wantBack(t, conf, i+1, time.Minute)
		if p := runningPid(t, conf); p != pid {
			t.Fatalf("kill %d: the background process changed from %d to %d: the fd and goroutine checks would compare two processes", i, pid, p)
		}
	}
	if got := fds(); got != fdsBefore {
		t.Errorf("open files of the background process: %d before, %d after %d redials", fdsBefore, got, n)
	}
	// A keepalive request may be in flight at either count.
	if g := statusJSON(t, conf).Goroutines; g > gBefore+2 {
		t.Errorf("goroutines of the background process: %d before, %d after %d redials", gBefore, g, n)
	}
	if after := resources(t); after != resBefore {
		t.Errorf("after %d kills:\n before %s\n after  %s", n, resBefore, after)
	}
	t.Logf("%d server pppd kills: fds %d -> %d, goroutines %d -> %d, threads %s, %s",
		n, fdsBefore, fds(), gBefore, statusJSON(t, conf).Goroutines, threads(), resources(t))
}

// localPPPD returns the pid of the client's pppd for the link; none
// fails the test.
func localPPPD(t *testing.T, link string) int {
	t.Helper()
	return onePPPD(t, "client", " linkname vpn-pppssh-"+link+" ")
}

func TestLocalPPPDKilledComesBack(t *testing.T) {
	conf := helperConf(t, "vpn", "SERVER_NETWORKS="+lab.BehindServerNet, "SERVER_MASQUERADE=yes")
	mustStart(t, conf)
	kill(t, localPPPD(t, "vpn"), syscall.SIGKILL)
	took := wantBack(t, conf, 1, time.Minute)
	ping(t, lab.ClientNS, lab.BehindServerIP) // routes and rules came back with it
	t.Logf("back %v after the local pppd was killed", took)
}

// After a reboot-style loss of /run (the process, its pppd and every state
// file gone), the next start works and leaves one of everything.
func TestStartAfterLosingRun(t *testing.T) {
	conf := needLab(t).Config("vpn", 1)
	mustStart(t, conf)
	pid := runningPid(t, conf)
	ppp := localPPPD(t, "vpn")
	kill(t, pid, syscall.SIGKILL)
	kill(t, ppp, syscall.SIGKILL)
	removeRunFiles(t, "")
	wantInterfaces(t, lab.ClientNS, 5*time.Second)
	if out, code := needLab(t).Client(t.Context(), "-c", conf, "start"); code != 0 {
		t.Fatalf("start after losing /run: %s", out)
	}
	wantInterfaces(t, lab.ClientNS, 0, "198.51.100.1 198.51.100.2")
	// The server's stale side ends by LCP echo or with the session; one
	// interface there too.
	wantInterfaces(t, lab.ServerNS, 45*time.Second, "198.51.100.2 198.51.100.1")
	ping(t, lab.ClientNS, "198.51.100.2")
}

// SIGHUP redials at once, as autossh's SIGUSR1 does.
func TestSIGHUPRedials(t *testing.T) {
	conf := needLab(t).Config("vpn", 1)
	mustStart(t, conf)
	kill(t, runningPid(t, conf), syscall.SIGHUP)
	took := wantBack(t, conf, 1, time.Minute)
	t.Logf("back %v after SIGHUP", took)
}

// cleanup finds masquerade rules by the link's name even when /run, and
// the journal with it, was lost.
func TestCleanupFindsRulesWithoutJournal(t *testing.T) {
	conf := needLab(t).Config("vpn", 1, "CLIENT_MASQUERADE=yes")
	mustStart(t, conf)
	if rules := firewallRules(t, lab.ClientNS); !strings.Contains(rules, "vpn-pppssh") {
		t.Fatalf("no rule of ours to lose before cleanup:\n%s", rules)
	}
	pid := runningPid(t, conf)
	ppp := localPPPD(t, "vpn")
	kill(t, pid, syscall.SIGKILL)
	kill(t, ppp, syscall.SIGKILL)
	removeRunFiles(t, "vpn.")
	// Without the journal, the forwarding value from before is unknown:
	// put it back by hand, as an admin would after such a loss.
	t.Cleanup(func() { lab.InNS(lab.ClientNS, "sh", "-c", "echo 0 >/proc/sys/net/ipv4/ip_forward") })
	out, code := client(t, "-c", conf, "cleanup")
	if code != 0 || !strings.Contains(out, "1 firewall rules") {
		t.Errorf("cleanup: exit %d: %s", code, out)
	}
	if rules := firewallRules(t, lab.ClientNS); strings.Contains(rules, "vpn-pppssh") {
		t.Errorf("rules left after cleanup:\n%s", rules)
	}
}

// removeRunFiles removes the files under /run/vpn-pppssh whose names start
// with prefix ("" = all), as a reboot would.
func removeRunFiles(t *testing.T, prefix string) {
	t.Helper()
	ents, err := os.ReadDir(runDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			if err := os.Remove(runDir + "/" + e.Name()); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// firewallRules is every firewall rule of the namespace, from both
// backends (see lab.FirewallRules); it fails the test when neither can be
// read.
func firewallRules(t *testing.T, ns string) string {
	t.Helper()
	rules, err := lab.FirewallRules(ns)
	if err != nil {
		t.Fatal(err)
	}
	return rules
}

// TestRetryFirstDial: at boot the server may not answer yet. With
// RETRY_FIRST_DIAL=yes, start says the first dial failed and returns 0,
// the background process keeps dialling, and the link is up soon after
// the server's sshd listens again (the wait ends when its port answers).
func TestRetryFirstDial(t *testing.T) {
	l := needLab(t)
	l.StopSSHD()
	started := false
	defer func() {
		if !started {
			if err := l.StartSSHD(); err != nil {
				t.Error(err)
			}
		}
	}()
	conf := l.Config("vpn", 1, "RETRY_FIRST_DIAL=yes")
	defer client(t, "-c", conf, "stop") // a failure below must not leave it dialling for the next test
	out, code := client(t, "-c", conf, "start")
	if code != 0 || !strings.Contains(out, "the first dial failed (connecting to "+lab.ServerIP+":22") || !strings.Contains(out, "redialling in the background") {
		t.Fatalf("start with the server down: exit %d: %s", code, out)
	}
	if s := statusJSON(t, conf); !s.Running || (s.Phase != "waiting" && s.Phase != "connecting") || !strings.Contains(s.LastError, "connection refused") {
		t.Errorf("status while the server is down: %+v", s)
	}
	begin := time.Now()
	started = true
	if err := l.StartSSHD(); err != nil {
		t.Fatal(err)
	}
	wantRedialed(t, conf)
	t.Logf("up %v after sshd listened again", time.Since(begin).Round(time.Millisecond))
	if out, code := client(t, "-c", conf, "stop"); code != 0 {
		t.Fatalf("stop: exit %d: %s", code, out)
	}
	wantClean(t, 5*time.Second)

	// Without it, the same start fails and leaves nothing running.
	l.StopSSHD()
	started = false
	wantFailure(t, l.Config("vpn", 1), 1, 20*time.Second, "connecting to "+lab.ServerIP+":22")
}
