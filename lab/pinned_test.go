package lab_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vpn-pppssh/vpn-pppssh/lab"
)

// The pinned forms of the bare-pppd sudoers rule, tried with real sudo,
// sshd and pppd. The password account is used, given for this test a
// NOPASSWD rule that denies pppd but for the pinned command lines, so that
// what sudo refuses is refused outright (not for want of a password).

const (
	pinnedPeers  = "vpn-pppssh-lab"
	classicLine  = "nodetach notty noauth logfd 2 lcp-echo-interval 10 lcp-echo-failure 3 ipparam vpn"
	pinnedRefuse = "refuse-pap\nrefuse-chap\nrefuse-mschap\nrefuse-mschap-v2\nrefuse-eap\n"
)

// cleanupErr runs undo at the end of the test and reports its error.
func cleanupErr(t *testing.T, what string, undo func() error) {
	t.Cleanup(func() {
		if err := undo(); err != nil {
			t.Errorf("removing %s: %v", what, err)
		}
	})
}

func pinnedSudoers(t *testing.T) {
	t.Helper()
	undo, err := lab.AddSudoers("vpn-pppssh-lab-pinned", "# vpn-pppssh lab: pinned pppd\n"+
		lab.PasswordUser+" ALL=(root) NOPASSWD: !"+lab.ServerPPPD+", "+
		lab.ServerPPPD+" call "+pinnedPeers+", "+
		lab.ServerPPPD+" "+classicLine+"\n")
	if err != nil {
		t.Fatal(err)
	}
	cleanupErr(t, "the sudoers drop-in", undo)
}

func TestPinnedCallForm(t *testing.T) {
	l := needLab(t)
	// The server's options, addresses included: the client account
	// chooses nothing but to start it.
	undo, err := lab.WritePeersFile(pinnedPeers, "# vpn-pppssh lab\nnodetach\nnotty\nnoauth\nlogfd 2\n"+
		"lcp-echo-interval 10\nlcp-echo-failure 3\n"+pinnedRefuse+"ipparam vpn\n198.51.100.2:198.51.100.1\n")
	if err != nil {
		t.Fatal(err)
	}
	cleanupErr(t, "the peers file", undo)
	pinnedSudoers(t)

	conf := l.Config("pinned", 1, "SERVER_USERNAME="+lab.PasswordUser, "SERVER_PPPD_CALL="+pinnedPeers)
	mustStart(t, conf)
	wantInterfaces(t, lab.ClientNS, 0, "198.51.100.1 198.51.100.2")
	wantInterfaces(t, lab.ServerNS, 5*time.Second, "198.51.100.2 198.51.100.1")
	ping(t, lab.ClientNS, "198.51.100.2")
	if out, code := client(t, "-c", conf, "stop"); code != 0 {
		t.Fatalf("stop: exit %d: %s", code, out)
	}
	wantClean(t, 10*time.Second)

	// The peers file pins the addresses too: a client asking for others
	// gets no link (and no route to an address of its choosing).
	other := l.Config("pinned2", 5, "SERVER_USERNAME="+lab.PasswordUser, "SERVER_PPPD_CALL="+pinnedPeers,
		"CONNECT_TIMEOUT=45", "PERSIST=no") // generous: UML can be slow; the refusal ends it sooner
	if out, code := client(t, "-c", other, "start"); code == 0 {
		client(t, "-c", other, "stop")
		t.Errorf("a link with addresses other than the peers file's came up: %s", out)
	} else if !strings.Contains(out, "Peer refused to agree to our IP address") {
		t.Errorf("the failure does not say the addresses were refused: %s", out)
	}
	wantClean(t, 15*time.Second)

	// Hand-made sessions of the same account.
	sshAs := func(command string) (string, int) {
		t.Helper()
		out, code, err := l.SSH(t.Context(), lab.PasswordUser, command)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("ssh %s %q -> exit %d: %s", lab.PasswordUser, command, code, out)
		return out, code
	}
	// An extra word after the pinned two: sudo refuses, pppd never runs.
	for _, extra := range []string{"nodetach", "connect /bin/true", "call " + pinnedPeers} {
		out, code := sshAs("sudo -n " + lab.ServerPPPD + " call " + pinnedPeers + " " + extra)
		if code == 0 || !strings.Contains(out, "not allowed to execute") {
			t.Errorf("extra %q: exit %d, want sudo's refusal: %s", extra, code, out)
		}
	}
	// The one other split of the two words: sudo lets it through (it
	// joins arguments with spaces), pppd refuses the single word.
	out, code := sshAs("sudo -n " + lab.ServerPPPD + " 'call " + pinnedPeers + "'")
	if code == 0 || !strings.Contains(out, "unrecognized option 'call "+pinnedPeers+"'") {
		t.Errorf("one-word split: exit %d, want pppd's refusal: %s", code, out)
	}
	// Why the classic pinned option list is weaker: a regrouped command
	// line passes sudo, and pppd reads logfd's number and ignores the
	// options folded into it (no LCP echo, so a vanished client's
	// interface stays).
	regrouped := lab.ServerPPPD + " nodetach notty noauth logfd '2 lcp-echo-interval 10 lcp-echo-failure 3' ipparam vpn"
	if out, code := sshAs("sudo -n -l " + regrouped); code != 0 {
		t.Errorf("the regrouped classic line no longer passes sudo (exit %d): %s", code, out)
	}
	if out, err := lab.Sh("sh", "-c", regrouped+" dryrun"); err != nil {
		t.Errorf("pppd refused the regrouped line: %v", err)
	} else if !strings.Contains(out, "logfd 2\t") || strings.Contains(out, "lcp-echo-interval 10") {
		t.Errorf("pppd did not take logfd 2 and drop the folded options:\n%s", out)
	}
}

// A server pppd that asks the client to authenticate (PAP, the protocol
// that would send a secret in the clear) gets a refusal, and the link
// fails: the client's secret never crosses.
func TestServerAskingForAuthenticationIsRefused(t *testing.T) {
	l := needLab(t)
	const secret = "lab-pap-secret-7f3d"
	undo, err := lab.WritePeersFile("vpn-pppssh-auth", "# vpn-pppssh lab: a server that asks for credentials\n"+
		"nodetach\nnotty\nauth\nrequire-pap\nshow-password\ndebug\nlogfd 2\n"+pinnedRefuse+"ipparam vpn\n")
	if err != nil {
		t.Fatal(err)
	}
	cleanupErr(t, "the peers file", undo)
	// A secret the client's pppd would send for any peer (the only line:
	// /etc is the lab's overlay, and the file is put back afterwards).
	secrets := "/etc/ppp/pap-secrets"
	old, err := os.ReadFile(secrets)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if err := os.WriteFile(secrets, []byte("* * "+secret+" *\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cleanupErr(t, "the secret", func() error { return os.WriteFile(secrets, old, 0o600) })

	conf := l.Config("auth", 1, "SERVER_PPPD_CALL=vpn-pppssh-auth", "CONNECT_TIMEOUT=45", "PERSIST=no")
	out, code := client(t, "-c", conf, "start")
	if code == 0 {
		client(t, "-c", conf, "stop")
		t.Errorf("the link came up although the server demanded authentication: %s", out)
	}
	wantClean(t, 10*time.Second)
	log, err := os.ReadFile(filepath.Join(runDir, "auth.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("exit %d: %s\nlog:\n%s", code, out, log)
	// The server did ask (else the test proves nothing) ...
	if !strings.Contains(string(log), "<auth pap>") {
		t.Errorf("the server pppd's log does not show it asking for PAP")
	}
	// ... and got nothing.
	for _, leak := range []string{secret, "PAP AuthReq"} {
		if strings.Contains(string(log), leak) || strings.Contains(out, leak) {
			t.Errorf("%q crossed to the server", leak)
		}
	}
	if !strings.Contains(out+string(log), "refused to authenticate") {
		t.Errorf("no clear error naming the refusal: %s", out)
	}
}
