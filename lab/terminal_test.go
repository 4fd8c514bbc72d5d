package lab_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vpn-pppssh/vpn-pppssh/lab"
)

// linkPPPDs are the server's pppd processes of the lab's link through
// the helper (its linkname), as "pid args"; pppd's notty relay
// (charshunt) is a fork of pppd with the same arguments.
func linkPPPDs() []string {
	var ps []string
	for _, p := range lab.Processes("pppd") {
		if slices.Contains(strings.Fields(p), "vpn-pppssh-in-"+lab.TunClient) {
			ps = append(ps, p)
		}
	}
	return ps
}

// sshdTerminals are the terminals that the lab's sshd sessions hold, as
// their process titles name them ("sshd: vpn@pts/3").
func sshdTerminals() []string {
	var ttys []string
	re := regexp.MustCompile(`@(pts/[0-9]+)`)
	for _, p := range lab.Processes("sshd") {
		for _, m := range re.FindAllStringSubmatch(p, -1) {
			ttys = append(ttys, "/dev/"+m[1])
		}
	}
	return ttys
}

// TestPPPHelperOnTerminal: through the helper (SERVER_PTY's default), the
// server's pppd speaks PPP on the terminal that sshd allocated for the
// link: no notty, no relay process of pppd's, and with the sudoers line
// server-setup writes (!use_pty), none of sudo's either.
func TestPPPHelperOnTerminal(t *testing.T) {
	before := snapshots()
	conf := helperConf(t, "vpn")
	mustStart(t, conf)
	ps := linkPPPDs()
	if len(ps) != 1 {
		t.Fatalf("server pppds of the link (a second is pppd's notty relay): %q", ps)
	}
	pid, args, _ := strings.Cut(ps[0], " ")
	fields := strings.Fields(args)
	if slices.Contains(fields, "notty") || !slices.Contains(fields, "local") {
		t.Errorf("server pppd's options: %s", args)
	}
	tty, err := os.Readlink("/proc/" + pid + "/fd/0")
	if err != nil {
		t.Fatal(err)
	}
	if ttys := sshdTerminals(); !slices.Contains(ttys, tty) {
		t.Errorf("server pppd speaks on %s, not on a terminal of sshd's (%q): a relay is between them", tty, ttys)
	}
	ping(t, lab.ClientNS, lab.TunServer)
	ping(t, lab.ServerNS, lab.TunClient)

	// The server's pppd killed: its helper starts it again on the same
	// terminal, and the link comes back in place on the same SSH
	// connection (TestServerPPPDRestartedInPlace looks closer).
	conn := sshConnection(t)
	n, err := strconv.Atoi(pid)
	if err != nil {
		t.Fatal(err)
	}
	kill(t, n, syscall.SIGKILL)
	wantBack(t, conf, 1, time.Minute)
	if again := sshConnection(t); again != conn {
		t.Errorf("the redial made a new SSH connection (%s, was %s)", again, conn)
	}
	ps = linkPPPDs()
	if len(ps) != 1 || strings.Contains(ps[0], " notty ") {
		t.Fatalf("server pppds after the redial: %q", ps)
	}
	again, _, _ := strings.Cut(ps[0], " ")
	if got, err := os.Readlink("/proc/" + again + "/fd/0"); err != nil || got != tty || again == pid {
		t.Errorf("after the kill, the server's pppd %s speaks on %q (%v); want a new pppd on the same terminal %s", again, got, err, tty)
	}
	if out, code := client(t, "-c", conf, "stop"); code != 0 {
		t.Fatalf("stop: %s", out)
	}
	wantClean(t, 5*time.Second)
	wantSnapshots(t, before, 5*time.Second)
	ok, left := lab.WaitFor(5*time.Second, func() (bool, string) {
		ps := lab.Processes("vpn-pppssh")
		return len(ps) == 0, strings.Join(ps, "; ")
	})
	if !ok {
		t.Errorf("left running after stop: %s", left)
	}
}

// TestPPPHelperWithoutTerminal: SERVER_PTY=no, and a key whose
// authorized_keys line says restrict (no terminal): the link comes up on
// the session's pipes through pppd's notty relay, and says why.
func TestPPPHelperWithoutTerminal(t *testing.T) {
	l := needLab(t)
	t.Run("SERVER_PTY=no", func(t *testing.T) {
		conf := l.Config("vpn", 1, "SERVER_HELPER="+l.Bin, "SERVER_PTY=no")
		mustStart(t, conf)
		defer client(t, "-c", conf, "stop")
		if ps := linkPPPDs(); len(ps) == 0 || !slices.Contains(strings.Fields(ps[0]), "notty") {
			t.Errorf("server pppd: %q", ps)
		}
		ping(t, lab.ClientNS, lab.TunServer)
	})
	t.Run("restrict", func(t *testing.T) {
		keys := filepath.Join("/home", lab.User, ".ssh", "authorized_keys")
		orig, err := os.ReadFile(keys)
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := os.WriteFile(keys, orig, 0o600); err != nil {
				t.Errorf("restoring %s: %v", keys, err)
			}
		}()
		pinned := `restrict,command="sudo -n ` + l.Bin + ` serve" ` + string(orig)
		if err := os.WriteFile(keys, []byte(pinned), 0o600); err != nil {
			t.Fatal(err)
		}
		conf := l.Config("vpn", 1, "SERVER_HELPER="+l.Bin)
		mustStart(t, conf)
		defer client(t, "-c", conf, "stop")
		if ps := linkPPPDs(); len(ps) == 0 || !slices.Contains(strings.Fields(ps[0]), "notty") {
			t.Errorf("server pppd: %q", ps)
		}
		ping(t, lab.ClientNS, lab.TunServer)
		log, err := os.ReadFile("/run/vpn-pppssh/vpn.log")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(log), "the server refused a terminal") {
			t.Errorf("the link's log does not say why it has no terminal:\n%s", tailLines(string(log), 20))
		}
	})
	wantClean(t, 5*time.Second)
}

// TestServeTerminalRefusals: the helper run on a terminal by hand, through
// the real sshd and sudo, as an account holder could: a token no link
// waits for and a token that is not one are refused in words, and leave
// nothing. (No token at all: serve's TestAttachRefusals.)
func TestServeTerminalRefusals(t *testing.T) {
	l := needLab(t)
	ptmx, err := os.Stat("/dev/ptmx")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, redirect, input, want string }{
		{"unknown token", "", "fedcba9876543210fedcba9876543210\n", "no link is waiting for this terminal"},
		{"bad token", "", "../../../etc/shadow\n", `bad link token "../../../etc/shadow"`},
		// A terminal that is not the session's pty: refused before
		// root changes anything on it.
		{"ptmx as stdin", " </dev/ptmx", "", "not a terminal of /dev/pts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, code, err := l.SSHTerminal(context.Background(), lab.User, "sudo -n "+l.Bin+" serve"+tc.redirect, tc.input)
			if err != nil {
				t.Fatal(err)
			}
			if code != 1 || !strings.Contains(out, tc.want) {
				t.Errorf("exit %d, want 1 and %q: %q", code, tc.want, out)
			}
		})
	}
	if now, err := os.Stat("/dev/ptmx"); err != nil || now.Mode() != ptmx.Mode() {
		t.Errorf("/dev/ptmx was %v, is %v (%v)", ptmx.Mode(), now.Mode(), err)
	}
	if ps := lab.Processes("vpn-pppssh"); len(ps) != 0 {
		t.Errorf("left running: %q", ps)
	}
	wantClean(t, 5*time.Second)
}
