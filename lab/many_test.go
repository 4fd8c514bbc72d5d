package lab_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vpn-pppssh/vpn-pppssh/lab"
)

// manyLinks is how many tun links TestManyLinks runs at once to one sshd
// on the host kernel; User-Mode Linux, one slow CPU with 2 GB, runs
// manyLinksUML.
const (
	manyLinks    = 64
	manyLinksUML = 4
)

// maxLinkRSS is the most memory one link's process may hold (issue 9's
// target for the client, per link).
const maxLinkRSS = 20 << 10 // KiB

// TestManyPPPLinks is TestManyLinks for MODE=ppp, real pppd on both ends
// and the server's through sudo: manyLinks links at once to one sshd, on a
// kernel with PPP. User-Mode Linux runs one slow CPU: there 64 pairs of
// pppd (and 16, beside the other labs of make test) do not start before
// their LCP gives up after 30 s, so it runs TestParallelLinks' 8 instead.
func TestManyPPPLinks(t *testing.T) {
	l := needLab(t)
	if !lab.OnHostKernel() {
		t.Skip("User-Mode Linux cannot start 64 pairs of pppd at once; TestParallelLinks starts 8 there")
	}
	manyLinksTest(t, l, manyLinks, "CONNECT_TIMEOUT=120")
}

// TestManyLinks starts manyLinks MODE=tun links through the helper at the
// same moment, from one client namespace to one sshd, each with its own
// addresses: every one must come up, carry pings both ways, and stop
// cleanly. It reports the memory each link costs on the client and on the
// server (the sshd session, sudo and serve), and fails a link whose
// process holds more than maxLinkRSS.
func TestManyLinks(t *testing.T) {
	l := needTunLab(t)
	n := manyLinks
	if !lab.OnHostKernel() {
		n = manyLinksUML
	}
	manyLinksTest(t, l, n, "MODE=tun", "SERVER_HELPER="+l.Bin, "CONNECT_TIMEOUT=120")
}

// manyLinksTest starts n links with the extra config lines at once, pings
// through each, measures what each costs, and stops them all.
func manyLinksTest(t *testing.T, l *lab.Lab, n int, extra ...string) {
	// The default policy lets one account run 8 server halves at once.
	if err := lab.WritePolicy(lab.Policy + fmt.Sprintf("MAX_SESSIONS=%d\nMAX_SESSIONS_PER_ACCOUNT=%d\n", n, n)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lab.WritePolicy(lab.Policy); err != nil {
			t.Error(err)
		}
	})
	_, basePSS, baseProcs, err := l.ServerMemory()
	if err != nil {
		t.Fatal(err)
	}
	var confs, names []string
	for i := range n {
		name := fmt.Sprintf("many%d", i)
		// .1/.2, .3/.4, ... .127/.128
		confs = append(confs, l.Config(name, 2*i+1, extra...))
		names = append(names, name)
	}
	t.Cleanup(func() {
		if t.Failed() {
			inParallel(t, confs, "stop")
		}
	})
	begin := time.Now()
	inParallel(t, confs, "start")
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("%d links up at once in %v", n, time.Since(begin).Round(time.Millisecond))

	// Every link carries pings, all links at once.
	cpu0, err := l.ServerCPU()
	if err != nil {
		t.Fatal(err)
	}
	pingsBegin := time.Now()
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			peer := fmt.Sprintf("198.51.100.%d", 2*i+2)
			// -w: wait for replies until the deadline (ping's -W alone
			// gives up two RTTs after the last send, and a loaded UML
			// answers late rather than not at all); with it ping sends
			// on until 3 replies are in, so count the replies: at least
			// 3, since a late one may come with the one a fourth probe
			// drew (ci21d: 4 transmitted, 4 received).
			out, err := lab.InNS(lab.ClientNS, "ping", "-c", "3", "-i", "0.2", "-w", "20", peer)
			if got := pingReplies(out); err != nil || got < 3 {
				t.Errorf("link %s: ping %s: %d replies: %v\n%s", names[i], peer, got, err, out)
			}
		}()
	}
	wg.Wait()
	cpu1, err := l.ServerCPU()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("server CPU while every link carried 3 pings each way: %v per link in %v",
		(cpu1-cpu0)/time.Duration(n), time.Since(pingsBegin).Round(time.Millisecond))

	var rssSum, pssSum, rssMax int
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(runDir, name+".pid"))
		if err != nil {
			t.Fatal(err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatalf("%s.pid: %v", name, err)
		}
		rss, pss, err := lab.Memory(pid)
		if err != nil {
			t.Fatalf("link %s (pid %d): %v", name, pid, err)
		}
		rssSum, pssSum, rssMax = rssSum+rss, pssSum+pss, max(rssMax, rss)
		if rss > maxLinkRSS {
			t.Errorf("link %s holds %d KiB, above %d KiB", name, rss, maxLinkRSS)
		}
	}
	srvRSS, srvPSS, srvProcs, err := l.ServerMemory()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("client, per link: RSS %.1f MiB on average (largest %.1f), PSS %.1f MiB", float64(rssSum)/float64(n)/1024,
		float64(rssMax)/1024, float64(pssSum)/float64(n)/1024)
	t.Logf("server, per link: PSS %.1f MiB in %.1f processes (sshd session, sudo, serve or pppd); RSS summed %.1f MiB",
		float64(srvPSS-basePSS)/float64(n)/1024, float64(srvProcs-baseProcs)/float64(n), float64(srvRSS)/float64(n)/1024)
	if srvProcs-baseProcs < n {
		t.Errorf("%d processes below sshd for %d links: the measure missed some", srvProcs-baseProcs, n)
	}

	begin = time.Now()
	inParallel(t, confs, "stop")
	t.Logf("%d links stopped at once in %v", n, time.Since(begin).Round(time.Millisecond))
	wantTun(t, lab.ClientNS, 10*time.Second)
	wantTun(t, lab.ServerNS, 30*time.Second)
	wantClean(t, 60*time.Second)
}

// pingReplies is the number ping's summary says were received, or -1.
func pingReplies(out string) int {
	m := pingSummary.FindStringSubmatch(out)
	if m == nil {
		return -1
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		return -1
	}
	return n
}

var pingSummary = regexp.MustCompile(`packets transmitted, (\d+) received`)
