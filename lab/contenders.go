package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vpn-pppssh/vpn-pppssh/lab/filewatch"
)

// Sample is one bring-up of a link, measured.
type Sample struct {
	LinkUp     time.Duration `json:"link_up"`
	RTT        time.Duration `json:"rtt"`      // median of the pings, the link idle
	RTTLoad    time.Duration `json:"rtt_load"` // median of the pings during the iperf3 run
	Mbps       float64       `json:"mbps"`     // iperf3 client to server, as received
	CPUPerGB   float64       `json:"cpu_per_gb"`
	ServerCPU  float64       `json:"server_cpu_per_gb"` // every process below the lab's sshd
	Redial     time.Duration `json:"redial,omitempty"`  // back up after the server's carrier was killed
	PeakRSSKiB int           `json:"peak_rss_kib"`      // summed over the client's processes
	// UpWork and RedialWork are the CPU time the whole machine spent in
	// the link-up and in the redial (both ends, kernels included, the
	// bench's own left out); UpShare and RedialShare are their shares of
	// what its CPUs could have done meanwhile (package cpuwork).
	UpWork      time.Duration `json:"up_work"`
	UpShare     float64       `json:"up_share"`
	RedialWork  time.Duration `json:"redial_work,omitempty"`
	RedialShare float64       `json:"redial_share,omitempty"`
}

// A Contender is one way of carrying IP from the client namespace to
// TunServer. Up returns the client-side processes that carry it (their CPU
// and memory are what the bench reports); Down takes it away. A Stream
// contender carries no IP: it is one SSH byte stream, the ceiling of
// anything that goes through SSH, measured by Transfer.
type Contender struct {
	Name   string
	Where  string // "UML" or "host kernel"
	Anchor string // the contender this one is compared with; "" for an anchor
	Up     func(ctx context.Context) (procs []int, err error)
	Down   func(ctx context.Context)
	Stream bool
	// Redial, where the contender has one, kills the server's end of
	// the carrier while the link is up and returns how long the link
	// took to be up again.
	Redial func(ctx context.Context) (time.Duration, error)
}

// Again is a second run of anchor in the same rounds, compared with it:
// how far apart the same tool lands is the bench's noise band, the least
// difference between two contenders that means anything.
func Again(anchor Contender, fresh Contender) Contender {
	fresh.Name, fresh.Anchor = anchor.Name+" (again)", anchor.Name
	return fresh
}

// Tool is vpn-pppssh with the lab's link and the extra config lines.
// Every Tool's link is named bench (its pid and state files are what the
// bench reads), so each writes its own lines into bench.conf as it comes
// up: written once when the contenders are made, the last one made would
// be what every Tool row measured.
func (l *Lab) Tool(name, anchor string, extra ...string) Contender {
	conf := filepath.Join(l.Dir, "bench.conf")
	return Contender{
		Name: name, Where: l.where(), Anchor: anchor,
		Up: func(ctx context.Context) ([]int, error) {
			if _, err := l.writeConfig("bench", 1, extra...); err != nil {
				return nil, err
			}
			out, code := l.Client(ctx, "-c", conf, "start")
			if code != 0 {
				l.keepLog("bench")
				return nil, fmt.Errorf("vpn-pppssh start: exit %d: %s", code, out)
			}
			b, err := os.ReadFile("/run/vpn-pppssh/bench.pid")
			if err != nil {
				return nil, err
			}
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				return nil, fmt.Errorf("bench.pid: %w", err)
			}
			procs := []int{pid}
			if pppd := pidWithArg("pppd", "vpn-pppssh-bench"); pppd > 0 {
				procs = append(procs, pppd)
			}
			return procs, nil
		},
		Down: func(ctx context.Context) {
			l.Client(ctx, "-c", conf, "stop")
			l.keepLog("bench")
		},
		Redial: redialAfterKill(serverCarrier(extra)),
	}
}

// serverCarrier says which server process carries a Tool contender's
// link, by its command name and one of its arguments: the helper
// (`vpn-pppssh serve`) in the tun modes, the server's pppd in PPP mode
// (bare, with notty; through the helper, by its linkname); "" for
// OpenSSH's forwarding, which has nothing to kill but sshd.
func serverCarrier(extra []string) (comm, arg string) {
	helper, ppp := false, true
	for _, e := range extra {
		helper = helper || strings.HasPrefix(e, "SERVER_HELPER=")
		ppp = ppp && !strings.HasPrefix(e, "MODE=")
	}
	switch {
	case ppp && helper:
		return "pppd", "vpn-pppssh-in-" + TunClient
	case ppp:
		return "pppd", "notty"
	case helper:
		return "vpn-pppssh", "serve"
	}
	return "", ""
}

// redialAfterKill kills the server's carrier process (serverCarrier) with
// SIGKILL and times the link's way back up, as its state file shows it
// (phase up, one more redial), watched without polling (filewatch.Until).
func redialAfterKill(comm, arg string) func(context.Context) (time.Duration, error) {
	if comm == "" {
		return nil
	}
	return func(ctx context.Context) (time.Duration, error) {
		before, err := benchState()
		if err != nil {
			return 0, err
		}
		pid := pidWithArg(comm, arg)
		if pid <= 0 {
			return 0, fmt.Errorf("redial: no server %s %s to kill", comm, arg)
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			return 0, fmt.Errorf("redial: killing the server's %s: %w", comm, err)
		}
		killed := time.Now()
		var last benchLinkState
		var lastErr error
		ok, err := filewatch.Until(benchStatePath, time.Minute, func(b []byte) bool {
			last = benchLinkState{}
			lastErr = json.Unmarshal(b, &last)
			return lastErr == nil && last.Phase == "up" && last.Redials > before.Redials
		})
		took := time.Since(killed)
		if err != nil {
			return 0, fmt.Errorf("redial: %w", err)
		}
		if !ok {
			return 0, fmt.Errorf("redial: not up again within a minute after the server's %s was killed (%+v, %v)", comm, last, lastErr)
		}
		return took, nil
	}
}

// benchLinkState is what the bench reads of the link's state file.
type benchLinkState struct {
	Phase   string `json:"phase"`
	Redials int    `json:"redials"`
}

// benchStatePath is the state file of the bench's link.
const benchStatePath = "/run/vpn-pppssh/bench.json"

func benchState() (benchLinkState, error) {
	var s benchLinkState
	b, err := os.ReadFile(benchStatePath)
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal(b, &s)
}

// Recipe is the HOWTO's own command line: pppd running OpenSSH's ssh as
// its pty program, detaching once the link is up.
func (l *Lab) Recipe() Contender {
	sshCmd := fmt.Sprintf("ssh -i %s -o UserKnownHostsFile=%s -o BatchMode=yes -c %s %s -l %s sudo -n %s nodetach notty noauth",
		l.Identity, l.KnownHosts(), BenchCipher, ServerIP, User, ServerPPPD)
	return Contender{
		Name: "HOWTO recipe (pppd + ssh)", Where: l.where(),
		Up: func(ctx context.Context) ([]int, error) {
			// ssh inherits pppd's stderr and keeps it open after pppd
			// detaches: give them a file, not a pipe.
			logf, err := os.Create(filepath.Join(l.Dir, "recipe.log"))
			if err != nil {
				return nil, err
			}
			defer logf.Close()
			cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ClientNS, "pppd", "updetach", "noauth", "passive",
				"pty", sshCmd, "ipparam", "vpn", "linkname", "recipe", TunClient+":"+TunServer)
			cmd.Stdout, cmd.Stderr = logf, logf
			if err := cmd.Run(); err != nil {
				out, _ := os.ReadFile(logf.Name())
				return nil, fmt.Errorf("recipe: %w: %s", err, out)
			}
			ssh, err := pidOf("ssh")
			if err != nil {
				return nil, err
			}
			pppd := pidWithArg("pppd", "recipe")
			if pppd <= 0 {
				return nil, errors.New("recipe: no local pppd with linkname recipe")
			}
			return []int{ssh, pppd}, nil
		},
		Down: func(context.Context) { stopRecipe() },
	}
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

// BenchCipher is the cipher of every contender: OpenSSH prefers
// chacha20-poly1305, vpn-pppssh aes128-gcm (hardware AES), and a bench
// that let each choose would measure the ciphers. vpn-lab --cipher
// changes it (UseCipher).
var BenchCipher = "aes128-gcm@openssh.com"

// UseCipher makes vpn-pppssh offer only cipher to the lab's server, the
// way an admin would: Ciphers in root's ~/.ssh/config, which is the lab's
// own (/root is an overlay inside the lab). The ssh contenders get -c.
func (l *Lab) UseCipher(cipher string) error {
	dir := "/root/.ssh"
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	conf := fmt.Sprintf("# vpn-lab: the bench's cipher\nHost %s\n  Ciphers %s\n", ServerIP, cipher)
	if err := os.WriteFile(filepath.Join(dir, "config"), []byte(conf), 0o600); err != nil {
		return fmt.Errorf("writing the lab's ~/.ssh/config: %w", err)
	}
	return nil
}

// sshArgs are the OpenSSH client options every ssh contender uses: the
// lab's key and known_hosts, the bench's cipher, as root (tunnel
// forwarding needs it).
func (l *Lab) sshArgs() []string {
	return []string{"-i", l.Identity, "-o", "UserKnownHostsFile=" + l.KnownHosts(), "-o", "BatchMode=yes",
		"-c", BenchCipher, "-l", "root"}
}

// SSHW is OpenSSH's own tunnel forwarding as an admin runs it: `ssh -w
// any:any` as root, then both ends configured by hand, because ssh leaves
// them down and without addresses.
func (l *Lab) SSHW() Contender {
	var cmd *exec.Cmd
	var done chan struct{}
	return Contender{
		Name: "ssh -w (OpenSSH tun)", Where: l.where(),
		Up: func(ctx context.Context) ([]int, error) {
			cTun, err := tunDevices(ClientNS)
			if err != nil {
				return nil, err
			}
			sTun, err := tunDevices(ServerNS)
			if err != nil {
				return nil, err
			}
			if len(cTun)+len(sTun) != 0 {
				return nil, fmt.Errorf("tun devices before ssh -w: client %v, server %v", cTun, sTun)
			}
			args := append([]string{"netns", "exec", ClientNS, "ssh", "-N", "-w", "any:any"}, l.sshArgs()...)
			cmd = exec.Command("ip", append(args, ServerIP)...)
			logf, err := os.Create(filepath.Join(l.Dir, "sshw.log"))
			if err != nil {
				return nil, err
			}
			cmd.Stdout, cmd.Stderr = logf, logf
			if err := cmd.Start(); err != nil {
				logf.Close()
				return nil, err
			}
			done = make(chan struct{})
			go func() { cmd.Wait(); logf.Close(); close(done) }()
			var c, s []string
			ok, _ := WaitFor(20*time.Second, func() (bool, string) {
				c, _ = tunDevices(ClientNS)
				s, _ = tunDevices(ServerNS)
				return len(c) == 1 && len(s) == 1, ""
			})
			if !ok {
				log, _ := os.ReadFile(logf.Name())
				return nil, fmt.Errorf("ssh -w: devices client %v, server %v after 20 s: %s", c, s, log)
			}
			for _, step := range []struct{ ns, dev, local, peer string }{
				{ClientNS, c[0], TunClient, TunServer}, {ServerNS, s[0], TunServer, TunClient},
			} {
				if _, err := Sh("ip", "-n", step.ns, "addr", "add", step.local, "peer", step.peer, "dev", step.dev); err != nil {
					return nil, err
				}
				if _, err := Sh("ip", "-n", step.ns, "link", "set", step.dev, "up"); err != nil {
					return nil, err
				}
			}
			// Up for a user once a ping goes through.
			if ok, _ := WaitFor(10*time.Second, func() (bool, string) {
				_, err := InNS(ClientNS, "ping", "-c", "1", "-W", "1", TunServer)
				return err == nil, ""
			}); !ok {
				return nil, errors.New("ssh -w: no ping through the tunnel within 10 s")
			}
			ssh, err := pidOf("ssh")
			return []int{ssh}, err
		},
		Down: func(context.Context) {
			if cmd == nil || cmd.Process == nil {
				return
			}
			cmd.Process.Signal(os.Interrupt)
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				cmd.Process.Kill()
				<-done
			}
		},
	}
}

// tunDevices lists the tun and tap devices of a namespace.
func tunDevices(ns string) ([]string, error) {
	out, err := Sh("ip", "-n", ns, "-o", "link", "show", "type", "tun")
	if err != nil {
		return nil, err
	}
	var devs []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(line); len(f) > 1 {
			name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			devs = append(devs, name)
		}
	}
	return devs, nil
}

// SSHStream is one OpenSSH byte stream, client to server: the ceiling of
// whatever goes through SSH on this path.
func (l *Lab) SSHStream() Contender {
	return Contender{Name: "one ssh byte stream (ceiling)", Where: l.where(), Stream: true}
}

// transfer pushes n bytes through one ssh session into cat on the server
// and returns the rate, the ssh client's CPU time and peak RSS.
func (l *Lab) transfer(ctx context.Context, n int64) (Sample, error) {
	args := append([]string{"netns", "exec", ClientNS, "ssh"}, l.sshArgs()...)
	cmd := exec.CommandContext(ctx, "ip", append(args, ServerIP, "cat >/dev/null")...)
	in, err := cmd.StdinPipe()
	if err != nil {
		return Sample{}, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	srv0, err := l.ServerCPU()
	if err != nil {
		return Sample{}, err
	}
	begin := time.Now()
	if err := cmd.Start(); err != nil {
		return Sample{}, err
	}
	// The ssh client is the child of ip netns exec's exec: the same pid.
	buf := make([]byte, 256*1024)
	var sent int64
	for sent < n {
		w, err := in.Write(buf[:min(int64(len(buf)), n-sent)])
		sent += int64(w)
		if err != nil {
			break
		}
	}
	in.Close()
	cpu, rss, uerr := procUsageAtExit(cmd)
	took := time.Since(begin)
	srv1, serr := l.ServerCPU()
	if serr != nil {
		return Sample{}, serr
	}
	if uerr != nil {
		return Sample{}, fmt.Errorf("ssh stream: %w: %s", uerr, stderr.String())
	}
	if sent != n {
		return Sample{}, fmt.Errorf("ssh stream: sent %d of %d bytes: %s", sent, n, stderr.String())
	}
	return Sample{
		Mbps:       float64(n) * 8 / took.Seconds() / 1e6,
		CPUPerGB:   cpu.Seconds() / (float64(n) / 1e9),
		ServerCPU:  (srv1 - srv0).Seconds() / (float64(n) / 1e9),
		PeakRSSKiB: rss,
	}, nil
}

// procUsageAtExit waits for cmd and returns its CPU time and peak RSS
// from the kernel's account of the exited process.
func procUsageAtExit(cmd *exec.Cmd) (time.Duration, int, error) {
	if err := cmd.Wait(); err != nil {
		return 0, 0, err
	}
	st := cmd.ProcessState
	ru, ok := st.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0, 0, errors.New("no resource usage for the exited process")
	}
	return st.UserTime() + st.SystemTime(), int(ru.Maxrss), nil
}

func (l *Lab) where() string {
	if OnHostKernel() {
		return "host kernel"
	}
	return "UML"
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
