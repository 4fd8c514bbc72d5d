package lab_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vpn-pppssh/vpn-pppssh/lab"
)

// DNS through the link: a real dnsmasq behind the server, reachable only
// through the tunnel, knows a name nobody else does. With DNS and
// DNS_SEARCH the client resolves its short name; stop, and cleanup after a
// kill -9, give /etc/resolv.conf back byte for byte. (In the lab neither
// systemd-resolved nor resolvconf runs: the file backend is the one used.)
func TestDNSThroughTheLink(t *testing.T) {
	l := needLab(t)
	if _, err := lab.InNS(lab.ClientNS, "ip", "route", "get", lab.BehindServerIP); err == nil {
		t.Fatalf("the client namespace has a route to %s: the answer would not prove the tunnel", lab.BehindServerIP)
	}
	startDNSMasq(t, l)
	const resolv = "/etc/resolv.conf"
	before, err := os.ReadFile(resolv)
	if err != nil {
		t.Fatalf("the lab's %s: %v", resolv, err)
	}
	conf := helperConf(t, "dns", "SERVER_NETWORKS="+lab.BehindServerNet, "SERVER_MASQUERADE=yes",
		"DNS="+lab.BehindServerIP, "DNS_SEARCH=lab.example")
	resolves := func() string {
		t.Helper()
		out, err := lab.InNS(lab.ClientNS, "getent", "hosts", "secret")
		if err != nil {
			return ""
		}
		return out
	}
	if out := resolves(); out != "" {
		t.Fatalf("the name resolves before the link is up: %q", out)
	}

	mustStart(t, conf)
	now, err := os.ReadFile(resolv)
	if err != nil || !strings.Contains(string(now), "nameserver "+lab.BehindServerIP+"\n") ||
		!strings.Contains(string(now), "search lab.example") {
		t.Fatalf("%s while the link is up (%v):\n%s", resolv, err, now)
	}
	if out := resolves(); !strings.HasPrefix(out, "198.51.100.77 ") || !strings.Contains(out, "secret.lab.example") {
		t.Fatalf("getent hosts secret through the link: %q", out)
	}
	if s := statusJSON(t, conf); !strings.HasPrefix(s.DNS, "dns "+lab.BehindServerIP+" search lab.example via ") {
		t.Errorf("status does not show the DNS settings: %+v", s)
	}
	if out, code := client(t, "-c", conf, "stop"); code != 0 {
		t.Fatalf("stop: exit %d: %s", code, out)
	}
	wantResolv(t, resolv, before)
	wantClean(t, 10*time.Second)

	// kill -9: the settings stay until cleanup (or the next start).
	mustStart(t, conf)
	pid := runningPid(t, conf)
	kill(t, pid, syscall.SIGKILL)
	if ok, _ := lab.WaitFor(10*time.Second, func() (bool, string) { return syscall.Kill(pid, 0) != nil, "" }); !ok {
		t.Fatalf("pid %d outlived SIGKILL", pid)
	}
	if now, _ := os.ReadFile(resolv); bytes.Equal(now, before) {
		t.Fatal("resolv.conf is back before anything undid it: the test proves nothing")
	}
	out, code := client(t, "-c", conf, "cleanup")
	if code != 0 || !strings.Contains(out, "DNS settings") {
		t.Fatalf("cleanup after kill -9: exit %d: %s", code, out)
	}
	wantResolv(t, resolv, before)
	wantClean(t, 10*time.Second)
}

// DNS=peer: the server half's pppd offers OFFER_DNS (ms-dns) from its
// policy, the client's asks for it (usepeerdns) and sets what it got; the
// ip-up scripts never see USEPEERDNS, so Debian's 0000usepeerdns leaves
// resolv.conf alone.
func TestDNSFromThePeer(t *testing.T) {
	l := needLab(t)
	startDNSMasq(t, l)
	if err := lab.WritePolicy(lab.Policy + "OFFER_DNS=" + lab.BehindServerIP + "\n"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lab.WritePolicy(lab.Policy); err != nil {
			t.Error(err)
		}
	})
	const resolv = "/etc/resolv.conf"
	before, err := os.ReadFile(resolv)
	if err != nil {
		t.Fatal(err)
	}
	conf := helperConf(t, "dns", "SERVER_NETWORKS="+lab.BehindServerNet, "SERVER_MASQUERADE=yes", "DNS=peer", "DNS_SEARCH=lab.example")
	mustStart(t, conf)
	if s := statusJSON(t, conf); !strings.HasPrefix(s.DNS, "dns "+lab.BehindServerIP+" search lab.example via ") {
		t.Errorf("status does not show the peer's name server: %+v", s)
	}
	if out, err := lab.InNS(lab.ClientNS, "getent", "hosts", "secret"); err != nil || !strings.HasPrefix(out, "198.51.100.77 ") {
		t.Fatalf("getent hosts secret with the peer's name server: %v %q", err, out)
	}
	if backups, _ := filepath.Glob(resolv + ".pppd-backup.*"); len(backups) > 0 {
		t.Errorf("Debian's 0000usepeerdns ran (%v): USEPEERDNS reached the ip-up scripts", backups)
	}
	// The server's pppd killed and renewed in place: the name server it
	// offers again is set again.
	kill(t, serverPPPD(t), syscall.SIGKILL)
	wantBack(t, conf, 1, time.Minute)
	if s := statusJSON(t, conf); !strings.HasPrefix(s.DNS, "dns "+lab.BehindServerIP+" search lab.example via ") {
		t.Errorf("status after the renewal does not show the peer's name server: %+v", s)
	}
	if out, err := lab.InNS(lab.ClientNS, "getent", "hosts", "secret"); err != nil || !strings.HasPrefix(out, "198.51.100.77 ") {
		t.Errorf("getent hosts secret after the renewal: %v %q", err, out)
	}
	if out, code := client(t, "-c", conf, "stop"); code != 0 {
		t.Fatalf("stop: exit %d: %s", code, out)
	}
	wantResolv(t, resolv, before)
	wantClean(t, 10*time.Second)

	// A server that offers a name server this host reaches outside the
	// tunnel (here the server's own LAN address): refused, not used.
	if err := lab.WritePolicy(lab.Policy + "OFFER_DNS=" + lab.ServerIP + "\n"); err != nil {
		t.Fatal(err)
	}
	wantFailure(t, conf, 1, 30*time.Second, "DNS=peer: the server offered name server "+lab.ServerIP+", which this host reaches through vpnlab0, not through the link")
	wantResolv(t, resolv, before)

	// A server that offers none: the start fails, naming what is missing.
	if err := lab.WritePolicy(lab.Policy); err != nil {
		t.Fatal(err)
	}
	wantFailure(t, conf, 1, 30*time.Second, "DNS=peer: the server's pppd offered no name server")
	wantResolv(t, resolv, before)
}

func wantResolv(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%s not given back (%v):\n--- want\n%s\n--- got\n%s", path, err, want, got)
	}
}

// startDNSMasq runs dnsmasq on the host behind the server, answering only
// for secret.lab.example, until the test ends.
func startDNSMasq(t *testing.T, l *lab.Lab) {
	t.Helper()
	logf, err := os.Create(filepath.Join(l.Dir, "dnsmasq.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command("ip", "netns", "exec", lab.BehindServerNS, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
		"--no-resolv", "--no-hosts", "--bind-interfaces", "--listen-address="+lab.BehindServerIP, "--port=53",
		"--address=/secret.lab.example/198.51.100.77", "--user=root", "--group=root", "--pid-file=",
		"--log-facility=-", "--log-queries")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("dnsmasq: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		<-done
	})
	ok, got := lab.WaitFor(10*time.Second, func() (bool, string) {
		out, err := lab.InNS(lab.BehindServerNS, "ss", "-Hlun")
		return err == nil && strings.Contains(out, lab.BehindServerIP+":53 "), out
	})
	if !ok {
		log, _ := os.ReadFile(filepath.Join(l.Dir, "dnsmasq.log"))
		t.Fatalf("dnsmasq does not listen on %s:53: %s\n%s", lab.BehindServerIP, got, log)
	}
}
