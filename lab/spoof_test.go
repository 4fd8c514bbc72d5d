package lab_test

import (
	"bufio"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vpn-pppssh/vpn-pppssh/lab"
)

// snmpCounter reads one counter of /proc/net/snmp or /proc/net/netstat in
// a namespace ("Icmp" "InEchos", "TcpExt" "IPReversePathFilter").
func snmpCounter(t *testing.T, ns, file, group, name string) int {
	t.Helper()
	out, err := lab.InNS(ns, "cat", file)
	if err != nil {
		t.Fatalf("reading %s in %s: %v", file, ns, err)
	}
	var header []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != group+":" {
			continue
		}
		if header == nil {
			header = f
			continue
		}
		for i, h := range header {
			if h == name && i < len(f) {
				n, err := strconv.Atoi(f[i])
				if err != nil {
					t.Fatalf("%s %s %s: %q", file, group, name, f[i])
				}
				return n
			}
		}
	}
	t.Fatalf("no counter %s %s in %s of %s", group, name, file, ns)
	return 0
}

// A client of the server half may send only from its own tunnel address
// and the networks routed to it: a packet that claims to come from a host
// behind the server (to reach the server as that host, or to have replies
// sent there) is dropped when it arrives, before the server answers it.
func TestServerDropsSpoofedSources(t *testing.T) {
	before := snapshots()
	conf := helperConf(t, "vpn")
	mustStart(t, conf)
	// The client claims an address of the server's own network behind it.
	spoofed := "203.0.113.77"
	if _, err := lab.Sh("ip", "-n", lab.ClientNS, "addr", "add", spoofed+"/32", "dev", "lo"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.Sh("ip", "-n", lab.ClientNS, "addr", "del", spoofed+"/32", "dev", "lo") }) // if the test stops early

	echos := snmpCounter(t, lab.ServerNS, "/proc/net/snmp", "Icmp", "InEchos")
	ping(t, lab.ClientNS, "198.51.100.2") // from its own address: answered
	if got := snmpCounter(t, lab.ServerNS, "/proc/net/snmp", "Icmp", "InEchos"); got < echos+3 {
		t.Fatalf("the server counted %d echo requests from the client's own address, want 3", got-echos)
	}

	echos = snmpCounter(t, lab.ServerNS, "/proc/net/snmp", "Icmp", "InEchos")
	filtered := snmpCounter(t, lab.ServerNS, "/proc/net/netstat", "TcpExt", "IPReversePathFilter")
	// Bounded: three requests, a second apart at most; no answer expected.
	lab.InNS(lab.ClientNS, "ping", "-c", "3", "-i", "0.2", "-W", "1", "-I", spoofed, "198.51.100.2")
	if got := snmpCounter(t, lab.ServerNS, "/proc/net/snmp", "Icmp", "InEchos"); got != echos {
		t.Errorf("the server took %d echo requests from the spoofed source %s", got-echos, spoofed)
	}
	if got := snmpCounter(t, lab.ServerNS, "/proc/net/netstat", "TcpExt", "IPReversePathFilter"); got < filtered+3 {
		t.Errorf("the reverse-path filter dropped %d packets, want the 3 spoofed ones", got-filtered)
	}
	out, code := client(t, "-c", conf, "status")
	if code != 0 || !strings.Contains(out, "source check on ppp") {
		t.Errorf("status does not show the client's own source check: %s", out)
	}
	if _, err := lab.Sh("ip", "-n", lab.ClientNS, "addr", "del", spoofed+"/32", "dev", "lo"); err != nil {
		t.Error(err)
	}
	client(t, "-c", conf, "stop")
	wantSnapshots(t, before, 10*time.Second)
}
