package lab

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vpn-pppssh/vpn-pppssh/lab/cpuwork"
)

// Tunnel addresses used by Demo and Bench.
const (
	TunClient = "198.51.100.1"
	TunServer = "198.51.100.2"
)

var rttRE = regexp.MustCompile(`time=([0-9.]+) ms`)

// Ping measures the median round-trip time from ns to addr over count
// pings (the median: UML has long tails that would drag a mean).
func Ping(ns, addr string, count int) (time.Duration, error) {
	return PingEvery(ns, addr, count, "0.02")
}

// PingEvery is Ping with pings interval seconds apart.
func PingEvery(ns, addr string, count int, interval string) (time.Duration, error) {
	out, err := InNS(ns, "ping", "-c", strconv.Itoa(count), "-i", interval, "-W", "3", addr)
	if err != nil {
		return 0, err
	}
	var v []float64
	for _, m := range rttRE.FindAllStringSubmatch(out, -1) {
		ms, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			return 0, fmt.Errorf("rtt in ping output: %w", err)
		}
		v = append(v, ms)
	}
	if len(v) == 0 {
		return 0, fmt.Errorf("no rtt in ping output: %s", out)
	}
	slices.Sort(v)
	return time.Duration(v[len(v)/2] * float64(time.Millisecond)), nil
}

// Throughput runs iperf3 from the client namespace to a one-shot server
// in the server namespace and returns what the server received, in Mbit/s,
// and in bytes.
func Throughput(seconds int) (float64, int64, error) { return ThroughputTo(TunServer, seconds) }

// ThroughputTo is Throughput to an iperf3 server on server, an address of
// the server namespace (an IPv6 one, say).
func ThroughputTo(server string, seconds int) (float64, int64, error) {
	var r struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
				Bytes         int64   `json:"bytes"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := iperf(&r, server, seconds, "-t", strconv.Itoa(seconds)); err != nil {
		return 0, 0, err
	}
	return r.End.SumReceived.BitsPerSecond / 1e6, r.End.SumReceived.Bytes, nil
}

// Load is what a load test moved each way, in Mbit/s as received.
type Load struct{ Up, Down float64 }

// LoadBothWays runs iperf3 in both directions at once for seconds, each
// way at most mbps Mbit/s (0: as fast as it goes).
func LoadBothWays(seconds, mbps int) (Load, error) {
	var r struct {
		End struct {
			Up struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
			Down struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received_bidir_reverse"`
		} `json:"end"`
	}
	args := []string{"-t", strconv.Itoa(seconds), "--bidir"}
	if mbps > 0 {
		args = append(args, "-b", strconv.Itoa(mbps)+"M")
	}
	if err := iperf(&r, TunServer, seconds, args...); err != nil {
		return Load{}, err
	}
	return Load{Up: r.End.Up.BitsPerSecond / 1e6, Down: r.End.Down.BitsPerSecond / 1e6}, nil
}

// iperf runs an iperf3 client for seconds in the client namespace against
// a one-shot server at server in the server namespace and decodes its
// JSON. The client gets 90 s beyond its run to end it: under UML, seconds
// of data queued in the SSH window delay iperf3's closing exchange.
func iperf(result any, server string, seconds int, args ...string) error {
	srv := exec.Command("ip", "netns", "exec", ServerNS, "iperf3", "-s", "-1", "--forceflush", "-B", server)
	out, err := srv.StdoutPipe()
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return fmt.Errorf("iperf3 server: %w", err)
	}
	defer func() {
		srv.Process.Kill()
		srv.Wait()
	}()
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		said := false
		for sc.Scan() {
			if !said && strings.Contains(sc.Text(), "Server listening") {
				said = true
				ready <- true
			}
		}
		if !said {
			ready <- false
		}
	}()
	select {
	case ok := <-ready:
		if !ok {
			return errors.New("iperf3 server exited before listening")
		}
	case <-time.After(20 * time.Second):
		return errors.New("iperf3 server not listening after 20s")
	}
	res, err := inNSWithin(time.Duration(seconds)*time.Second+90*time.Second,
		ClientNS, "iperf3", append([]string{"-c", server, "-J"}, args...)...)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(res), result); err != nil {
		return fmt.Errorf("iperf3 output: %w", err)
	}
	return nil
}

// ProcUsage reads a process's CPU time and peak resident set.
func ProcUsage(pid int) (cpu time.Duration, peakKiB int, err error) {
	st, err := cpuwork.ReadStat(pid)
	if err != nil {
		return 0, 0, err
	}
	cpu = st.Self
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			if peakKiB, err = strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB")); err != nil {
				return 0, 0, fmt.Errorf("/proc/%d/status: %s: %w", pid, line, err)
			}
			return cpu, peakKiB, nil
		}
	}
	return 0, 0, fmt.Errorf("/proc/%d/status has no VmHWM", pid)
}

// pidOf returns the pid of the only process named comm.
func pidOf(comm string) (int, error) {
	ps := Processes(comm)
	if len(ps) != 1 {
		return 0, fmt.Errorf("want one %s process, found %d: %v", comm, len(ps), ps)
	}
	pid, _, _ := strings.Cut(ps[0], " ")
	return strconv.Atoi(pid)
}

// pidWithArg returns the pid of a process named comm whose arguments
// include arg, or 0.
func pidWithArg(comm, arg string) int {
	for _, p := range Processes(comm) {
		pid, args, _ := strings.Cut(p, " ")
		if slices.Contains(strings.Fields(args), arg) {
			if n, err := strconv.Atoi(pid); err == nil {
				return n
			}
		}
	}
	return 0
}
