package lab_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vpn-pppssh/vpn-pppssh/lab"
)

// ispNS is the dial-up test's "isp": the far end of the client's uplinks,
// and the only way from the client to the server behind it.
const ispNS = "vpnlab-i"

// The HOWTO's dial-up case with the installed ppp hooks: two ordinary ppp
// uplinks (pppd on both ends over a pty, not over SSH) between the client
// and an "isp" namespace, which is the client's only way to the server.
// A link started by hand (its own pppd, and the server's incoming pppd)
// triggers nothing; the first uplink starts HOOK_LINKS; the second leaves
// the running link alone; losing the uplink the link's SSH ran over
// redials it over the one that remains; losing the last one stops it.
func TestDialUpHooks(t *testing.T) {
	l := needLab(t)
	if _, err := lab.InNS(lab.ClientNS, "ip", "route", "get", lab.BehindServerIP); err == nil {
		t.Fatalf("the client namespace has a route to %s: the uplinks would not be its only way", lab.BehindServerIP)
	}
	syslog, err := lab.CatchSyslog()
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Logf("syslog:\n%s", strings.Join(syslog.Lines(), "\n"))
		}
		if err := syslog.Close(); err != nil {
			t.Error(err)
		}
	}()
	inner, err := l.StartInnerSSHD()
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Stop()
	setupISP(t)

	kh := filepath.Join(l.Dir, "known_hosts_dialup")
	if err := os.WriteFile(kh, []byte(l.KnownHost+"\n"+inner.KnownHost+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	office := installLink(t, "office", l.Config("office", 1, "SERVER_HOSTNAME="+lab.BehindServerIP, "SSH_KNOWN_HOSTS="+kh, "SERVER_HELPER="+l.Bin,
		// A redial takes over the server's session of the uplink that
		// went, whose path is gone: on a loaded UML that and a login
		// over a ppp uplink took more than the default 30 s once.
		"CONNECT_TIMEOUT=60"))
	manual := installLink(t, "manual", l.Config("manual", 3))
	installHooks(t, l, `HOOK_LINKS="office"`, "VPN_PPPSSH="+l.Bin, "HOOK_METHOD=direct")
	defer client(t, "-n", "office", "stop")

	hook := "vpn-pppssh-hook: "
	t.Run("a link of our own triggers nothing", func(t *testing.T) {
		from := len(syslog.Lines())
		mustStart(t, manual)
		// Its pppd's ip-up ran the hook, and so did the server's pppd
		// (ipparam vpn): each says it is ours, and nothing starts.
		if syslog.WaitFor(from, 30*time.Second, hook, ` up (linkname "vpn-pppssh-manual", ipparam "vpn"): one of vpn-pppssh's own`) < 0 {
			t.Fatal("the hook never saw the manual link's own pppd come up")
		}
		if syslog.WaitFor(from, 30*time.Second, hook, ` up (linkname "", ipparam "vpn"): one of vpn-pppssh's own`) < 0 {
			t.Fatal("the hook never saw the server's pppd of the manual link come up")
		}
		if out, code := client(t, "-c", manual, "stop"); code != 0 {
			t.Fatalf("stop: exit %d: %s", code, out)
		}
		if syslog.WaitFor(from, 30*time.Second, hook, ` down (linkname "vpn-pppssh-manual", ipparam "vpn"): one of vpn-pppssh's own`) < 0 {
			t.Fatal("the hook never ran for the manual link's ip-down")
		}
		if syslog.WaitFor(from, 30*time.Second, hook, ` down (linkname "", ipparam "vpn"): one of vpn-pppssh's own`) < 0 {
			t.Fatal("the hook never ran for the ip-down of the manual link's server pppd")
		}
		if i := syslog.WaitFor(from, 0, hook, "vpn-pppssh link"); i >= 0 {
			t.Fatalf("our own link made the hook act: %s", syslog.Lines()[i])
		}
		if s := statusJSON(t, office); s.Running {
			t.Fatalf("office runs after a link of our own came up: %+v", s)
		}
	})

	from := len(syslog.Lines())
	a := startUplink(t, l, "uplinkA", 1)
	if syslog.WaitFor(from, 30*time.Second, hook, `(ipparam "uplinkA") is up: starting vpn-pppssh link office (direct)`) < 0 {
		t.Fatal("uplinkA came up and the hook did not start office")
	}
	up := waitOffice(t, office, "after uplinkA came up", func(s linkStatus) bool { return s.Phase == "up" })
	// The server half's pppd for office ran the hooks too, as an
	// incoming session, whatever ipparam the client chose.
	if syslog.WaitFor(from, 30*time.Second, hook, ` up (linkname "vpn-pppssh-in-198.51.100.1", ipparam "vpn"): one of vpn-pppssh's own`) < 0 {
		t.Fatal("the hook never saw the server half's pppd of office come up")
	}
	if up.Via != "198.19.1.2" {
		t.Fatalf("office's SSH connection leaves from %q, want uplinkA's 198.19.1.2", up.Via)
	}
	ping(t, lab.ClientNS, "198.51.100.2")

	from = len(syslog.Lines())
	b := startUplink(t, l, "uplinkB", 2)
	if syslog.WaitFor(from, 30*time.Second, hook, "link office is already running") < 0 {
		t.Fatal("uplinkB came up: the hook did not try office, or office was not running")
	}
	if s := statusJSON(t, office); s.Pid != up.Pid || s.Via != up.Via || s.Redials != 0 {
		t.Fatalf("uplinkB coming up changed office: %+v, was %+v", s, up)
	}

	// uplinkA goes: office's connection went over it, so it is redialled
	// at once, over uplinkB, by the same process.
	from = len(syslog.Lines())
	stopUplink(t, a)
	if syslog.WaitFor(from, 30*time.Second, hook, `(ipparam "uplinkA") is down, `, "still up: redialling vpn-pppssh link office") < 0 {
		t.Fatal("uplinkA went down and the hook did not redial office")
	}
	if syslog.WaitFor(from, 30*time.Second, hook, fmt.Sprintf("link office (pid %d) is dialling again", up.Pid)) < 0 {
		t.Fatal("office was not told to dial again")
	}
	// The link went down for the hook's SIGHUP, not later for its
	// unanswered keepalives.
	if syslog.WaitFor(from, 30*time.Second, "vpn-pppssh-office[", `msg="link down" reason="redial requested (SIGHUP)"`) < 0 {
		t.Fatal("office did not go down for the hook's redial")
	}
	moved := waitOffice(t, office, "after uplinkA went down", func(s linkStatus) bool {
		return s.Phase == "up" && s.Redials > 0 && s.Via == "198.19.2.2"
	})
	if moved.Pid != up.Pid {
		t.Errorf("office is another process after the redial: pid %d, was %d", moved.Pid, up.Pid)
	}
	ping(t, lab.ClientNS, "198.51.100.2")

	// uplinkB goes: nothing is left to carry the link, so it stops.
	from = len(syslog.Lines())
	stopUplink(t, b)
	if syslog.WaitFor(from, 30*time.Second, hook, `(ipparam "uplinkB") is down: stopping vpn-pppssh link office`) < 0 {
		t.Fatal("the last uplink went down and the hook did not stop office")
	}
	waitOffice(t, office, "after the last uplink went down", func(s linkStatus) bool { return !s.Running })
	// With the path gone the server cannot be told: its pppd ends when
	// its LCP echoes go unanswered (3 x 10 s in the lab's server half).
	wantInterfaces(t, lab.BehindServerNS, 60*time.Second)
	wantClean(t, 15*time.Second)
	// What may stay is the registry's lock, .lock.
	if left, err := filepath.Glob("/run/vpn-pppssh-uplinks/[^.]*"); err != nil || len(left) > 0 {
		t.Errorf("the hooks' record of uplinks outlived the uplinks: %v %v", left, err)
	}
}

// waitOffice waits up to two minutes for the link's status to satisfy ok:
// a redial's CONNECT_TIMEOUT (60 s), its holdoff and a second attempt.
func waitOffice(t *testing.T, conf, when string, ok func(linkStatus) bool) linkStatus {
	t.Helper()
	var s linkStatus
	if done, _ := lab.WaitForEvery(2*time.Minute, 500*time.Millisecond, func() (bool, string) {
		s = statusJSON(t, conf)
		return ok(s), ""
	}); !done {
		dumpLog(t, conf)
		t.Fatalf("office %s: status %+v", when, s)
	}
	return s
}

// setupISP makes the isp namespace: a veth to the host behind the server
// (198.19.0.0/24), forwarding, and routes both ways. The uplinks add the
// client's side.
func setupISP(t *testing.T) {
	t.Helper()
	steps := [][]string{
		{"netns", "add", ispNS},
		{"link", "add", "vpnlab6", "netns", ispNS, "type", "veth", "peer", "name", "vpnlab7", "netns", lab.BehindServerNS},
		{"-n", ispNS, "addr", "add", "198.19.0.1/24", "dev", "vpnlab6"},
		{"-n", lab.BehindServerNS, "addr", "add", "198.19.0.2/24", "dev", "vpnlab7"},
		{"-n", ispNS, "link", "set", "lo", "up"},
		{"-n", ispNS, "link", "set", "vpnlab6", "up"},
		{"-n", lab.BehindServerNS, "link", "set", "vpnlab7", "up"},
		{"-n", ispNS, "route", "add", lab.BehindServerIP + "/32", "via", "198.19.0.2"},
		{"-n", lab.BehindServerNS, "route", "add", "198.19.0.0/16", "via", "198.19.0.1"},
	}
	t.Cleanup(func() {
		// Deleting the namespace deletes the veth, and with its far
		// end the route through it.
		if _, err := lab.Sh("ip", "netns", "del", ispNS); err != nil {
			t.Error(err)
		}
	})
	for _, s := range steps {
		if _, err := lab.Sh("ip", s...); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := lab.InNS(ispNS, "sysctl", "-qw", "net.ipv4.ip_forward=1"); err != nil {
		t.Fatal(err)
	}
}

// installLink puts a lab link file where the hooks' vpn-pppssh -n NAME
// looks, and returns that path.
func installLink(t *testing.T, name, conf string) string {
	t.Helper()
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join("/etc/vpn-pppssh", name+".conf")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(p) })
	return p
}

// installHooks installs the repository's ppp hooks as an admin does, and
// /etc/default/vpn-pppssh with the given lines (/etc is the lab's overlay).
func installHooks(t *testing.T, l *lab.Lab, defaults ...string) {
	t.Helper()
	scripts := os.Getenv(scriptsEnv)
	if scripts == "" {
		t.Fatal(scriptsEnv + " is not set: the lab's outer process names the repository's scripts")
	}
	files := map[string]string{
		"/etc/ppp/ip-up.d/vpn-pppssh":   "ip-up.d-vpn-pppssh",
		"/etc/ppp/ip-down.d/vpn-pppssh": "ip-down.d-vpn-pppssh",
	}
	// The admin's own: each uplink's default route, the first one
	// preferred; run-parts runs it before vpn-pppssh. It goes with the
	// interface.
	const routes = "/etc/ppp/ip-up.d/00-lab-uplink-route"
	script := "#!/bin/sh\ncase $6 in\nuplinkA) metric=100 ;;\nuplinkB) metric=200 ;;\n*) exit 0 ;;\nesac\nexec ip route add default dev \"$1\" metric $metric\n"
	if err := os.WriteFile(routes, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(routes) })
	for dst, src := range files {
		b, err := os.ReadFile(filepath.Join(scripts, src))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(dst) })
	}
	const def = "/etc/default/vpn-pppssh"
	old, err := os.ReadFile(def)
	had := err == nil
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if err := os.WriteFile(def, []byte(strings.Join(defaults, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if had {
			os.WriteFile(def, old, 0o644)
		} else {
			os.Remove(def)
		}
	})
}

// startUplink starts an ordinary ppp link from the client to the isp, the
// isp's pppd on the pty of the client's (with no ip-up scripts of its
// own). The client's default route through it comes from the admin's
// ip-up.d script that installHooks adds (pppd 2.4.9 adds no second default
// route, whatever its defaultroute-metric).
func startUplink(t *testing.T, l *lab.Lab, name string, n int) *uplink {
	t.Helper()
	local, remote := fmt.Sprintf("198.19.%d.2", n), fmt.Sprintf("198.19.%d.1", n)
	isp := strings.Join([]string{"ip netns exec", ispNS, "pppd nodetach notty noauth local nodefaultroute",
		"linkname isp-" + name, "ip-up-script /bin/true ip-down-script /bin/true", remote + ":" + local}, " ")
	logf, err := os.Create(filepath.Join(l.Dir, name+".pppd.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command("ip", "netns", "exec", lab.ClientNS, "pppd", "nodetach", "noauth", "local", "logfd", "2",
		"linkname", name, "ipparam", name, local+":"+remote, "pty", isp)
	// A file, not a pipe: a hook that outlives pppd keeps its copy of
	// the descriptor, and Wait would wait for it.
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	u := &uplink{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(u.done) }()
	t.Cleanup(func() { stopUplink(t, u) })
	return u
}

// uplink is the client's pppd of an uplink (ip netns exec execs it).
type uplink struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when it has exited
}

// stopUplink hangs the uplink up as an admin's poff does (SIGTERM to its
// pppd, which then runs ip-down) and waits for its pppd to exit.
func stopUplink(t *testing.T, u *uplink) {
	select {
	case <-u.done:
		return
	default:
	}
	u.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-u.done:
	case <-time.After(30 * time.Second):
		u.cmd.Process.Kill()
		<-u.done
		t.Errorf("uplink pppd pid %d did not end within 30 s of SIGTERM", u.cmd.Process.Pid)
	}
}
