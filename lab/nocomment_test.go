package lab_test

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vpn-pppssh/vpn-pppssh/lab"
)

const modprobePath = "/proc/sys/kernel/modprobe"

// withoutXTComment unloads the comment match from the lab's kernel and
// keeps it from coming back on demand until the test ends, as on a minimal
// kernel built without it.
func withoutXTComment(t *testing.T) {
	t.Helper()
	if !insideUML(t) {
		t.Skip("unloads a kernel module: only inside the User-Mode Linux lab, never on the host's kernel")
	}
	old, err := os.ReadFile(modprobePath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(modprobePath, []byte("/bin/false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.WriteFile(modprobePath, old, 0o644); err != nil {
			t.Errorf("restoring %s: %v", modprobePath, err)
		}
		if _, err := lab.Sh("modprobe", "-d", "/run/lab-modules", "xt_comment"); err != nil {
			t.Errorf("loading xt_comment again: %v", err)
		}
	})
	if _, err := lab.Sh("rmmod", "xt_comment"); err != nil {
		t.Fatal(err)
	}
	if mods, err := os.ReadFile("/proc/modules"); err != nil || strings.Contains(string(mods), "xt_comment ") {
		t.Fatalf("xt_comment still loaded (%v)", err)
	}
}

// On a kernel without xt_comment the client's masquerade still works: it
// goes into a chain named after the link, status says so, and cleanup
// finds the rule by the link's name after the journal was lost.
func TestMasqueradeWithoutXTComment(t *testing.T) {
	l := needLab(t)
	withoutXTComment(t)
	before := snapshots()
	fwd, err := lab.InNS(lab.ClientNS, "cat", "/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		t.Fatal(err)
	}
	conf := l.Config("vpn", 1, "CLIENT_MASQUERADE=yes")
	mustStart(t, conf)
	out, code := client(t, "-c", conf, "status")
	if code != 0 || !strings.Contains(out, "firewall   iptables-legacy (no xt_comment: a chain per link)") {
		t.Errorf("status does not show the chain layout: exit %d: %s", code, out)
	}
	rules := firewallRules(t, lab.ClientNS)
	for _, want := range []string{":vpn-pppssh-vpn - ", "-A POSTROUTING -j vpn-pppssh-vpn", "-A vpn-pppssh-vpn -s 198.51.100.2/32 ! -o ppp0 -j MASQUERADE"} {
		if !strings.Contains(rules, want) {
			t.Errorf("rules lack %q:\n%s", want, rules)
		}
	}
	if strings.Contains(rules, "--comment") {
		t.Errorf("a comment match is in use:\n%s", rules)
	}

	// The process and its journal are lost; cleanup finds the chain.
	pid, ppp := runningPid(t, conf), localPPPD(t, "vpn")
	kill(t, pid, syscall.SIGKILL)
	kill(t, ppp, syscall.SIGKILL)
	removeRunFiles(t, "vpn.")
	out, code = client(t, "-c", conf, "cleanup")
	if code != 0 || !strings.Contains(out, "1 firewall rules") {
		t.Errorf("cleanup: exit %d: %s", code, out)
	}
	if rules := firewallRules(t, lab.ClientNS); strings.Contains(rules, "vpn-pppssh") {
		t.Errorf("rules left after cleanup:\n%s", rules)
	}
	// Without the journal the forwarding value from before is unknown:
	// put it back by hand, as an admin would after such a loss.
	if _, err := lab.InNS(lab.ClientNS, "sh", "-c", "echo "+strings.TrimSpace(fwd)+" >/proc/sys/net/ipv4/ip_forward"); err != nil {
		t.Fatal(err)
	}
	wantSnapshots(t, before, 10*time.Second)
}

// insideUML reports whether the lab's kernel is User-Mode Linux, whose
// /proc/cpuinfo says so.
func insideUML(t *testing.T) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Contains(string(b), "User Mode Linux")
}
