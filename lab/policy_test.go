package lab_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vpn-pppssh/vpn-pppssh/lab"
)

// The server half's refusals, proven through the real sshd and sudo with
// sessions that a vpn-pppssh client would never open: hand-made requests
// sent with OpenSSH's ssh client.

const refusal = "vpn-pppssh-serve error: "

// withPolicy puts body in the server's policy file ("" removes it) for the
// test, and the lab's policy back afterwards.
func withPolicy(t *testing.T, body string) {
	t.Helper()
	var err error
	if body == "" {
		err = os.Remove(lab.PolicyFile)
	} else {
		err = lab.WritePolicy(body)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lab.WritePolicy(lab.Policy); err != nil {
			t.Errorf("restoring the lab policy: %v", err)
		}
	})
}

// dialServe opens a raw session of the server half as user.
func dialServe(t *testing.T, user string) *lab.RawServe {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	s, err := needLab(t).DialServe(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("ending the session of %s: %v", user, err)
		}
		t.Logf("session of %s, stderr:\n%s", user, s.Stderr())
	})
	return s
}

func rawRequest(link, local, peer, extra string) string {
	return fmt.Sprintf(`{"v":1,"link":%q,"ipparam":"vpn","local":%q,"peer":%q%s}`, link, local, peer, extra)
}

// wantRefused sends request as user and wants a refusal containing want,
// the session ended by the server and nothing changed on it.
func wantRefused(t *testing.T, user, request, want string) string {
	t.Helper()
	before := lab.Snapshot(lab.ServerNS)
	s := dialServe(t, user)
	if err := s.Send(request); err != nil {
		t.Fatal(err)
	}
	answer, err := s.Answer(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(answer, refusal) || !strings.Contains(answer, want) {
		t.Errorf("answer %q, want a refusal with %q", answer, want)
	}
	if !s.Ended(10 * time.Second) {
		t.Errorf("the server half did not end the refused session")
	}
	if after := lab.Snapshot(lab.ServerNS); after != before {
		t.Errorf("a refusal changed the server:\n--- before\n%s\n--- after\n%s", before, after)
	}
	return answer
}

func TestServeRefusesHandMadeRequests(t *testing.T) {
	needLab(t)
	const peers = "ALLOW_PEERS=198.51.100.0/24,192.0.2.0/24,203.0.113.0/24\n"
	cases := []struct {
		name, policy, request, want string
	}{
		{"masquerade under ALLOW_FORWARDING=no",
			lab.Policy + "ALLOW_FORWARDING=no\n",
			rawRequest("raw", "198.51.100.2", "198.51.100.1", `,"masquerade":true`),
			"masquerade needs forwarding, which needs ALLOW_FORWARDING=yes in " + lab.PolicyFile + " (it says ALLOW_FORWARDING=no)"},
		{"peer is the server's own veth address",
			lab.Policy + peers,
			rawRequest("raw", "198.51.100.2", lab.ServerIP, ""),
			"peer " + lab.ServerIP + " is an address of this server (vpnlab1)"},
		{"peer inside a route of the server",
			lab.Policy + peers,
			rawRequest("raw", "198.51.100.2", "203.0.113.9", ""),
			"route " + lab.BehindServerNet + " dev vpnlab2 already covers peer 203.0.113.9"},
		{"network over a route of the server",
			lab.Policy + "ALLOW_NETWORKS=203.0.113.0/24\n",
			rawRequest("raw", "198.51.100.2", "198.51.100.1", `,"routes":["203.0.113.128/25"]`),
			"route " + lab.BehindServerNet + " dev vpnlab2 overlaps network 203.0.113.128/25"},
		{"peer outside ALLOW_PEERS",
			lab.Policy,
			rawRequest("raw", "198.51.100.2", "198.18.0.9", ""),
			"peer 198.18.0.9 is outside ALLOW_PEERS=198.51.100.0/24 in " + lab.PolicyFile},
		{"masquerade without a policy file",
			"",
			rawRequest("raw", "10.9.0.1", "10.9.0.2", `,"masquerade":true`),
			"masquerade needs ALLOW_MASQUERADE=yes in " + lab.PolicyFile + " (the file does not exist)"},
		{"half-tunnel routes without a policy file",
			"",
			rawRequest("raw", "10.9.0.1", "10.9.0.2", `,"routes":["0.0.0.0/1","128.0.0.0/1"]`),
			"needs ALLOW_FORWARDING=yes in " + lab.PolicyFile + " (the file does not exist)"},
		{"plain link without a policy file",
			"",
			rawRequest("raw", "198.51.100.2", "198.51.100.1", ""),
			"tunnel addresses need ALLOW_PEERS in " + lab.PolicyFile + " (the file does not exist): list the range you hand out, e.g. ALLOW_PEERS=198.51.100.0/24"},
		{"private tunnel addresses without ALLOW_PEERS",
			"ALLOW_FORWARDING=yes\nALLOW_MASQUERADE=yes\n",
			rawRequest("raw", "10.9.0.1", "10.9.0.2", ""),
			"tunnel addresses need ALLOW_PEERS in " + lab.PolicyFile + " (it does not set ALLOW_PEERS)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			withPolicy(t, c.policy)
			wantRefused(t, lab.User, c.request, c.want)
		})
	}
	wantClean(t, 5*time.Second)
}

// serverPPPDs lists the pids of the pppds the server half runs (logging
// to fd 3, on the session's terminal or, with notty, on its pipes),
// without the child that pppd's notty forks to carry the session's bytes.
func serverPPPDs(t *testing.T) []string {
	t.Helper()
	found, _ := topPPPDs(t, " logfd 3 ")
	pids := make([]string, len(found))
	for i, n := range found {
		pids[i] = strconv.Itoa(n)
	}
	return pids
}

// parentPid is ppidOf for a pid as /proc names it; "" when it is gone.
func parentPid(pid string) string {
	n, err := strconv.Atoi(pid)
	if err != nil {
		return ""
	}
	if p := ppidOf(n); p > 0 {
		return strconv.Itoa(p)
	}
	return ""
}

// Another account, or the same account under another link name, cannot
// end or take over a link's server side: the link stays up.
func TestServeTakeoverNeedsSameAccountAndLink(t *testing.T) {
	conf := helperConf(t, "vpn", "CLIENT_NETWORKS="+lab.BehindClientNet)
	mustStart(t, conf)
	ping(t, lab.ClientNS, "198.51.100.2")
	held := serverPPPDs(t)
	if len(held) != 1 {
		t.Fatalf("server pppds: %v, want one; all pppds: %q", held, lab.Processes("pppd"))
	}
	for _, c := range []struct{ user, link string }{{lab.OtherUser, "vpn"}, {lab.User, "other"}} {
		t.Run(c.user+" "+c.link, func(t *testing.T) {
			wantRefused(t, c.user, rawRequest(c.link, "198.51.100.2", "198.51.100.1", ""),
				"peer 198.51.100.1 is in use by another session (another account or link name), which was left running")
			if got := serverPPPDs(t); len(got) != 1 || got[0] != held[0] {
				t.Errorf("server pppds %v, want %v left alone", got, held)
			}
			ping(t, lab.ClientNS, "198.51.100.2")
			ping(t, lab.ServerNS, lab.BehindClientIP)
		})
	}
	// Another account cannot take the network the link routes either,
	// and is not told what the link routes or who holds it.
	answer := wantRefused(t, lab.OtherUser, rawRequest("b", "198.51.100.6", "198.51.100.5", `,"routes":["198.18.0.0/16"]`),
		"network 198.18.0.0/16 is in use by another session")
	if answer != refusal+"network 198.18.0.0/16 is in use by another session" {
		t.Errorf("the refusal tells of the other session: %q", answer)
	}
	ping(t, lab.ServerNS, lab.BehindClientIP)
}

// The same account redialling under the same link name still replaces its
// own stale server side.
func TestServeSameAccountAndLinkTakesOver(t *testing.T) {
	conf := helperConf(t, "vpn")
	mustStart(t, conf)
	held := serverPPPDs(t)
	if len(held) != 1 {
		t.Fatalf("server pppds: %v, want one; all pppds: %q", held, lab.Processes("pppd"))
	}
	s := dialServe(t, lab.User)
	if err := s.Send(rawRequest("vpn", "198.51.100.2", "198.51.100.1", "")); err != nil {
		t.Fatal(err)
	}
	answer, err := s.Answer(30 * time.Second)
	if err != nil || answer != "vpn-pppssh-serve ok" {
		t.Fatalf("answer %q, err %v", answer, err)
	}
	ok, got := lab.WaitFor(10*time.Second, func() (bool, string) {
		p := serverPPPDs(t)
		return len(p) == 1 && p[0] != held[0], strings.Join(p, " ")
	})
	if !ok {
		t.Errorf("server pppds %s, want the old one (%s) replaced by one new one", got, held[0])
	}
	if err := s.Close(); err != nil {
		t.Errorf("ending the raw session: %v", err)
	}
	client(t, "-c", conf, "stop")
	wantClean(t, 15*time.Second)
}

// A session that never sends its request is refused at the deadline and
// ends: it does not hold a root process.
func TestServeGivesUpOnASilentSession(t *testing.T) {
	needLab(t)
	s := dialServe(t, lab.User)
	begin := time.Now()
	answer, err := s.Answer(30 * time.Second)
	took := time.Since(begin)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(answer, refusal) || !strings.Contains(answer, "no request arrived in time: none within 10s") {
		t.Errorf("answer %q", answer)
	}
	if took > 25*time.Second {
		t.Errorf("refused after %v, want about 10s", took)
	}
	if !s.Ended(10 * time.Second) {
		t.Errorf("the session did not end")
	}
	t.Logf("a silent session was refused after %v", took.Round(time.Millisecond))
	wantClean(t, 5*time.Second)
}

// MAX_SESSIONS=1: a second link is refused while the first one runs.
func TestServeMaxSessions(t *testing.T) {
	l := needLab(t)
	withPolicy(t, lab.Policy+"MAX_SESSIONS=1\n")
	a := helperConf(t, "a")
	mustStart(t, a)
	b := l.Config("b", 5, "SERVER_HELPER="+l.Bin)
	out, code := client(t, "-c", b, "start")
	if code != 1 || !strings.Contains(out, "the server refused: too many sessions: all MAX_SESSIONS=1 in "+lab.PolicyFile+" are in use") {
		t.Errorf("second link: exit %d: %s", code, out)
	}
	wantInterfaces(t, lab.ClientNS, 5*time.Second, "198.51.100.1 198.51.100.2")
	ping(t, lab.ClientNS, "198.51.100.2")
	client(t, "-c", b, "stop")
}
