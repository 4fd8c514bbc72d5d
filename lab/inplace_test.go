package lab_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vpn-pppssh/vpn-pppssh/lab"
)

// traceHooks makes ip-up.d and ip-down.d directories whose one hook adds
// "DIR IFACE" to a trace file, and returns the keys that use them and a
// reader of the trace, one entry per hook run.
func traceHooks(t *testing.T) (keys []string, runs func() []string) {
	t.Helper()
	l := needLab(t)
	trace := filepath.Join(l.Dir, "hook-trace-inplace")
	if err := os.Remove(trace); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	for _, d := range []string{"ip-up.d", "ip-down.d"} {
		dir := filepath.Join(l.Dir, "inplace-"+d)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		body := "#!/bin/sh\necho \"" + d + " $1\" >>" + trace + "\n"
		if err := os.WriteFile(filepath.Join(dir, "10-trace"), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
		key := map[string]string{"ip-up.d": "IP_UP_DIR=", "ip-down.d": "IP_DOWN_DIR="}[d]
		keys = append(keys, key+dir)
	}
	return keys, func() []string {
		b, err := os.ReadFile(trace)
		if err != nil {
			t.Fatalf("the hooks' trace: %v", err)
		}
		return strings.Split(strings.TrimSpace(string(b)), "\n")
	}
}

// TestServerPPPDRestartedInPlace: through the helper on the link's
// terminal (SERVER_PTY's default), a server pppd killed outright is
// started again by the same helper on the same terminal. The client keeps
// its pppd, its sessions and its SSH connection; it runs its ip-down and
// ip-up hooks once more and sets its routes again, and the server sets its
// own again: the network behind the server answers through the
// masquerade. After the policy's PPPD_RESTARTS restarts within 10 minutes
// the helper gives up, and the client redials on its kept connection as
// before. Once the admin has taken away a grant the link uses, a killed
// pppd is not started again, and the redial is refused.
func TestServerPPPDRestartedInPlace(t *testing.T) {
	const restartLimit = 2
	withPolicy(t, lab.Policy+"PPPD_RESTARTS=2\n")
	before := snapshots()
	keys, runs := traceHooks(t)
	conf := helperConf(t, "vpn", append(keys, "SERVER_NETWORKS="+lab.BehindServerNet, "SERVER_MASQUERADE=yes")...)
	mustStart(t, conf)
	ping(t, lab.ClientNS, lab.BehindServerIP)
	conn, local := sshConnection(t), localPPPD(t, "vpn")
	for i := range restartLimit {
		srv := serverPPPD(t)
		helper := parentPid(strconv.Itoa(srv))
		if helper == "" {
			t.Fatalf("no parent of the server's pppd %d", srv)
		}
		kill(t, srv, syscall.SIGKILL)
		took := wantBack(t, conf, i+1, time.Minute)
		ping(t, lab.ClientNS, lab.BehindServerIP)
		if p := localPPPD(t, "vpn"); p != local {
			t.Fatalf("restart %d: the client's pppd changed from %d to %d: the link was redialled, not renewed", i+1, local, p)
		}
		again := serverPPPD(t)
		if again == srv || parentPid(strconv.Itoa(again)) != helper {
			t.Fatalf("restart %d: the server's pppd is %d (parent %s), was %d (parent %s): not started again by the same helper",
				i+1, again, parentPid(strconv.Itoa(again)), srv, helper)
		}
		if c := sshConnection(t); c != conn {
			t.Fatalf("restart %d: a new SSH connection (%s, was %s)", i+1, c, conn)
		}
		t.Logf("restart %d: back in place %v after the server's pppd was killed", i+1, took)
	}
	want := []string{"ip-up.d ppp"}
	for range restartLimit {
		want = append(want, "ip-down.d ppp", "ip-up.d ppp")
	}
	wantRuns := func(when string, want []string) {
		t.Helper()
		got := runs()
		if len(got) != len(want) {
			t.Fatalf("%s: hook runs %q, want %d: %q", when, got, len(want), want)
		}
		for i := range want {
			if !strings.HasPrefix(got[i], want[i]) {
				t.Errorf("%s: hook run %d: %q, want %q…", when, i+1, got[i], want[i])
			}
		}
	}
	wantRuns("after the restarts", want)

	// One more within the window: the helper gives up, its session ends,
	// and the client redials on the kept connection with a new pppd.
	kill(t, serverPPPD(t), syscall.SIGKILL)
	wantBack(t, conf, restartLimit+1, time.Minute)
	ping(t, lab.ClientNS, lab.BehindServerIP)
	if p := localPPPD(t, "vpn"); p == local {
		t.Errorf("the client's pppd %d stayed after the helper gave up: the link was not redialled", p)
	}
	if c := sshConnection(t); c != conn {
		dumpLog(t, conf)
		t.Errorf("the redial made a new SSH connection (%s, was %s), though the old one still answered", c, conn)
	}
	b, err := os.ReadFile(filepath.Join(runDir, "vpn.log"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "link up again in place"); n != restartLimit {
		dumpLog(t, conf)
		t.Errorf("the log says %d times that the link came up again in place, want %d", n, restartLimit)
	}

	// The admin takes ALLOW_MASQUERADE away while the link runs. The new
	// helper (a fresh session, a fresh count) reads the policy again at
	// the next kill and does not start pppd again: the link asks for a
	// masquerade. The redial that follows is refused for the same reason.
	narrowed := strings.Replace(lab.Policy, "ALLOW_MASQUERADE=yes\n", "", 1)
	if narrowed == lab.Policy {
		t.Fatalf("the lab policy has no ALLOW_MASQUERADE=yes line to take away:\n%s", lab.Policy)
	}
	withPolicy(t, narrowed+"PPPD_RESTARTS=2\n")
	kill(t, serverPPPD(t), syscall.SIGKILL)
	// The link's end quotes the helper's reason too: only a redial's
	// refusal says "the server refused".
	ok, last := lab.WaitFor(time.Minute, func() (bool, string) {
		s := statusJSON(t, conf)
		return s.Phase != "up" && strings.Contains(s.LastError, "the server refused") && strings.Contains(s.LastError, "ALLOW_MASQUERADE"),
			fmt.Sprintf("%+v", s)
	})
	if !ok {
		dumpLog(t, conf)
		t.Fatalf("the redial after ALLOW_MASQUERADE went was not refused for it: %s", last)
	}
	if b, err = os.ReadFile(filepath.Join(runDir, "vpn.log")); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(strings.Split(string(b), "\n"), func(line string) bool {
		return strings.Contains(line, "pppd was killed: not starting it again") && strings.Contains(line, "ALLOW_MASQUERADE")
	}) {
		dumpLog(t, conf)
		t.Error("the helper did not say it would not start pppd again for want of ALLOW_MASQUERADE")
	}
	if found, all := topPPPDs(t, " linkname vpn-pppssh-in-"); len(found) != 0 {
		t.Errorf("a server pppd runs after the policy took the link's masquerade away: %q", all)
	}
	if strings.Count(string(b), "link up again in place") != restartLimit {
		t.Error("the link came up in place after the policy took its masquerade away")
	}
	if out, code := client(t, "-c", conf, "stop"); code != 0 {
		t.Fatalf("stop: %s", out)
	}
	wantRuns("after stop", append(want, "ip-down.d ppp", "ip-up.d ppp", "ip-down.d ppp"))
	wantClean(t, 5*time.Second)
	wantSnapshots(t, before, 5*time.Second)
}
