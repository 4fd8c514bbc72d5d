package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Tunnel addresses used by Demo and Bench.
const (
	TunClient = "198.51.100.1"
	TunServer = "198.51.100.2"
)

// Sample is one bring-up of a link, measured.
type Sample struct {
	LinkUp     time.Duration
	RTT        time.Duration // ping average
	Mbps       float64       // iperf3, client to server, received
	CPU        time.Duration // user+system time of the program carrying the link
	PeakRSSKiB int           // of that program
	PPPDCPU    time.Duration // of the local pppd
}

var rttRE = regexp.MustCompile(`= [0-9.]+/([0-9.]+)/`)

// Ping measures the average round-trip time from ns to addr.
func Ping(ns, addr string, count int) (time.Duration, error) {
	out, err := InNS(ns, "ping", "-q", "-c", strconv.Itoa(count), "-i", "0.02", "-W", "3", addr)
	if err != nil {
		return 0, err
	}
	m := rttRE.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no rtt in ping output: %s", out)
	}
	ms, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("rtt in ping output: %w", err)
	}
	return time.Duration(ms * float64(time.Millisecond)), nil
}

// Throughput runs iperf3 from the client namespace to a one-shot server
// in the server namespace and returns what the server received, in Mbit/s.
func Throughput(seconds int) (float64, error) {
	srv := exec.Command("ip", "netns", "exec", ServerNS, "iperf3", "-s", "-1", "--forceflush", "-B", TunServer)
	out, err := srv.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := srv.Start(); err != nil {
		return 0, fmt.Errorf("iperf3 server: %w", err)
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
			return 0, errors.New("iperf3 server exited before listening")
		}
	case <-time.After(20 * time.Second):
		return 0, errors.New("iperf3 server not listening after 20s")
	}
	res, err := InNS(ClientNS, "iperf3", "-c", TunServer, "-t", strconv.Itoa(seconds), "-J")
	if err != nil {
		return 0, err
	}
	var r struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal([]byte(res), &r); err != nil {
		return 0, fmt.Errorf("iperf3 output: %w", err)
	}
	return r.End.SumReceived.BitsPerSecond / 1e6, nil
}

// ProcUsage reads a process's CPU time and peak resident set.
func ProcUsage(pid int) (cpu time.Duration, peakKiB int, err error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// Fields after the command name, which is in parentheses.
	s := string(stat)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	utime, err1 := strconv.Atoi(f[11])
	stime, err2 := strconv.Atoi(f[12])
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat: utime %q stime %q", pid, f[11], f[12])
	}
	cpu = time.Duration(utime+stime) * time.Second / 100 // USER_HZ
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

// measureUp fills the traffic and usage figures of a link that is up and
// carried by the process carrier.
func measureUp(s *Sample, carrier int, linkname string, iperfSeconds int) error {
	var err error
	if s.RTT, err = Ping(ClientNS, TunServer, 100); err != nil {
		return err
	}
	if s.Mbps, err = Throughput(iperfSeconds); err != nil {
		return err
	}
	if s.CPU, s.PeakRSSKiB, err = ProcUsage(carrier); err != nil {
		return err
	}
	// Every contender runs a local pppd: not finding it is an error, not
	// a figure of 0.
	pppd := pidWithArg("pppd", linkname)
	if pppd <= 0 {
		return fmt.Errorf("no local pppd with linkname %s", linkname)
	}
	if s.PPPDCPU, _, err = ProcUsage(pppd); err != nil {
		return fmt.Errorf("local pppd: %w", err)
	}
	return nil
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

// A Contender is one way of bringing the link up: Up returns the pid of
// the client process that carries the link, Down takes it away.
type Contender struct {
	Name     string
	Linkname string // pppd's linkname, to find the local pppd
	Up       func(ctx context.Context) (carrier int, err error)
	Down     func(ctx context.Context)
}

// Tool is vpn-pppssh.
func (l *Lab) Tool() Contender {
	conf := l.Config("bench", 1)
	return Contender{
		Name: "vpn-pppssh", Linkname: "vpn-pppssh-bench",
		Up: func(ctx context.Context) (int, error) {
			out, code := l.Client(ctx, "-c", conf, "start")
			if code != 0 {
				l.keepLog("bench")
				return 0, fmt.Errorf("vpn-pppssh start: exit %d: %s", code, out)
			}
			b, err := os.ReadFile("/run/vpn-pppssh/bench.pid")
			if err != nil {
				return 0, err
			}
			return strconv.Atoi(strings.TrimSpace(string(b)))
		},
		Down: func(ctx context.Context) {
			l.Client(ctx, "-c", conf, "stop")
			l.keepLog("bench")
		},
	}
}

// Recipe is the HOWTO's own command line: pppd running OpenSSH's ssh as
// its pty program, detaching once the link is up.
func (l *Lab) Recipe() Contender {
	sshCmd := fmt.Sprintf("ssh -i %s -o UserKnownHostsFile=%s -o BatchMode=yes %s -l %s sudo -n %s nodetach notty noauth",
		l.Identity, l.KnownHosts(), ServerIP, User, ServerPPPD)
	return Contender{
		Name: "recipe", Linkname: "recipe",
		Up: func(ctx context.Context) (int, error) {
			// ssh inherits pppd's stderr and keeps it open after pppd
			// detaches: give them a file, not a pipe.
			logf, err := os.Create(filepath.Join(l.Dir, "recipe.log"))
			if err != nil {
				return 0, err
			}
			defer logf.Close()
			cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ClientNS, "pppd", "updetach", "noauth", "passive",
				"pty", sshCmd, "ipparam", "vpn", "linkname", "recipe", TunClient+":"+TunServer)
			cmd.Stdout, cmd.Stderr = logf, logf
			if err := cmd.Run(); err != nil {
				out, _ := os.ReadFile(logf.Name())
				return 0, fmt.Errorf("recipe: %w: %s", err, out)
			}
			return pidOf("ssh")
		},
		Down: func(context.Context) { stopRecipe() },
	}
}

// Measure brings the link up with c, optionally measures traffic, and
// takes it down again.
func (l *Lab) Measure(ctx context.Context, c Contender, iperfSeconds int) (Sample, error) {
	var s Sample
	begin := time.Now()
	carrier, err := c.Up(ctx)
	s.LinkUp = time.Since(begin)
	if err != nil {
		return s, err
	}
	defer c.Down(ctx)
	if iperfSeconds == 0 {
		return s, nil
	}
	return s, measureUp(&s, carrier, c.Linkname, iperfSeconds)
}

func stopRecipe() {
	b, err := os.ReadFile("/run/ppp-recipe.pid")
	if err != nil {
		return
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		return
	}
	if p, err := os.FindProcess(pid); err == nil {
		p.Signal(os.Interrupt)
	}
	WaitFor(10*time.Second, func() (bool, string) { return len(Processes("pppd")) == 0, "" })
}

// keepLog copies a link's log into the lab folder when vpn-lab --keep asked
// for it; the lab's /run vanishes with the lab.
func (l *Lab) keepLog(name string) {
	if os.Getenv("VPN_LAB_KEEP_LOG") != "true" {
		return
	}
	b, _ := os.ReadFile("/run/vpn-pppssh/" + name + ".log")
	f, err := os.OpenFile(filepath.Join(l.Dir, name+".log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err == nil {
		f.Write(b)
		f.Close()
	}
}
