package lab_test

import (
	"strings"
	"testing"

	"github.com/vpn-pppssh/vpn-pppssh/lab"
)

// TestPPPSustainedLoad: a PPP link through the helper on its terminal
// (the default, and the bench's fastest PPP form) carries iperf3 both
// ways at once for 60 s. Neither end's ppp device counts a receive error
// (ppp_async counts a frame with a bad FCS or length there), no IP header
// arrives malformed, both ways move data, and the link is the same link
// afterwards: no redial, the same process, a ping answered.
func TestPPPSustainedLoad(t *testing.T) {
	const seconds = 60
	conf := helperConf(t, "vpn")
	mustStart(t, conf)
	pid := runningPid(t, conf)
	cdev, sdev := pppDevice(t, lab.ClientNS), pppDevice(t, lab.ServerNS)
	cBefore, sBefore := deviceCounters(t, lab.ClientNS, cdev), deviceCounters(t, lab.ServerNS, sdev)
	upBefore, _ := deviceReceived(t, lab.ServerNS, sdev)
	downBefore, _ := deviceReceived(t, lab.ClientNS, cdev)
	res, err := lab.LoadBothWays(seconds, 0)
	if err != nil {
		dumpLog(t, conf)
		t.Fatal(err)
	}
	up, _ := deviceReceived(t, lab.ServerNS, sdev)
	down, _ := deviceReceived(t, lab.ClientNS, cdev)
	up, down = up-upBefore, down-downBefore
	t.Logf("%d s both ways at once: %.1f Mbit/s client to server, %.1f back; %d packets carried up, %d down",
		seconds, res.Up, res.Down, up, down)
	if up < 500 || down < 500 {
		t.Errorf("the link carried %d packets up and %d down under load", up, down)
	}
	// One TCP stream may starve behind the other under UML (seconds of
	// queue in the SSH window at a few Mbit/s): only the sum must move.
	if res.Up+res.Down <= 0 {
		t.Errorf("iperf3 moved nothing: %+v", res)
	}
	for _, end := range []struct {
		ns, dev string
		before  map[string]int64
	}{{lab.ClientNS, cdev, cBefore}, {lab.ServerNS, sdev, sBefore}} {
		after := deviceCounters(t, end.ns, end.dev)
		for name, v := range end.before {
			if after[name] != v {
				t.Errorf("%s %s %s: %d before, %d after", end.ns, end.dev, name, v, after[name])
			}
		}
	}
	s := statusJSON(t, conf)
	if s.Redials != 0 || s.Phase != "up" || s.Pid != pid {
		t.Errorf("the link died under load: %+v (pid was %d)", s, pid)
	}
	ping(t, lab.ClientNS, "198.51.100.2")
}

// pppDevice is the one ppp interface of ns.
func pppDevice(t *testing.T, ns string) string {
	t.Helper()
	ifs, err := lab.PPPInterfaces(ns)
	if err != nil {
		t.Fatal(err)
	}
	if len(ifs) != 1 {
		t.Fatalf("not one ppp interface in %s: %q", ns, ifs)
	}
	name, _, _ := strings.Cut(ifs[0], " ")
	return name
}
