package lab

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/vpn-pppssh/vpn-pppssh/lab/cpuwork"
)

// BenchResult is one contender's medians over a bench run.
type BenchResult struct {
	Name    string    `json:"name"`
	Where   string    `json:"where"`
	Anchor  string    `json:"anchor,omitempty"`
	Stream  bool      `json:"stream,omitempty"`
	Median  Sample    `json:"median"`
	LinkUps []float64 `json:"link_ups"` // every bring-up, seconds, sorted
	Rounds  int       `json:"rounds"`
	Seconds int       `json:"seconds"`
}

// Bench measures the contenders over the same namespaces in one lab run,
// alternating so that drift hits them alike: cycles bring-ups without
// traffic for the link-up time, then rounds with ping and iperf3 (a
// stream contender moves as many bytes as a median link did in a round).
// Each round's figures are printed to w as they come.
func (l *Lab) Bench(ctx context.Context, w io.Writer, cs []Contender, cycles, rounds, seconds int) ([]BenchResult, error) {
	ups := make([][]Sample, len(cs))
	for i := range cycles {
		for j, c := range cs {
			if c.Stream {
				continue
			}
			s, err := l.Measure(ctx, c, 0)
			if err != nil {
				return nil, fmt.Errorf("cycle %d, %s: %w", i+1, c.Name, err)
			}
			ups[j] = append(ups[j], s)
		}
	}
	traffic := make([][]Sample, len(cs))
	for i := range rounds {
		for j, c := range cs {
			var s Sample
			var err error
			if c.Stream {
				s, err = l.transfer(ctx, streamBytes(traffic, seconds))
			} else {
				s, err = l.Measure(ctx, c, seconds)
			}
			if err != nil {
				return nil, fmt.Errorf("round %d, %s: %w", i+1, c.Name, err)
			}
			traffic[j] = append(traffic[j], s)
			fmt.Fprintf(w, "round %d %-40s up %6.3fs (work %.2fs, %.0f%%)  rtt %.3f/%.3fms  %8.1f Mbit/s  cpu %.2f+%.2f s/GB  rss %.1f MiB  redial %.3fs (work %.2fs, %.0f%%)\n", i+1, c.Name,
				s.LinkUp.Seconds(), s.UpWork.Seconds(), 100*s.UpShare, ms(s.RTT), ms(s.RTTLoad), s.Mbps, s.CPUPerGB, s.ServerCPU, float64(s.PeakRSSKiB)/1024,
				s.Redial.Seconds(), s.RedialWork.Seconds(), 100*s.RedialShare)
		}
	}
	res := make([]BenchResult, len(cs))
	for j, c := range cs {
		m := median(traffic[j])
		all := append(ups[j], traffic[j]...)
		if !c.Stream {
			ma := median(all)
			m.LinkUp, m.UpWork, m.UpShare = ma.LinkUp, ma.UpWork, ma.UpShare
		}
		res[j] = BenchResult{Name: c.Name, Where: c.Where, Anchor: c.Anchor, Stream: c.Stream, Median: m,
			LinkUps: linkUps(all), Rounds: rounds, Seconds: seconds}
	}
	return res, nil
}

// streamBytes is what a stream contender moves in a round: as much as the
// fastest link moved so far in a round, at least 100 MB.
func streamBytes(traffic [][]Sample, seconds int) int64 {
	best := 0.0
	for _, ss := range traffic {
		for _, s := range ss {
			best = max(best, s.Mbps)
		}
	}
	return max(int64(best*1e6/8*float64(seconds)), 100e6)
}

// Measure brings the link up with c, optionally measures traffic, and
// takes it down again.
func (l *Lab) Measure(ctx context.Context, c Contender, iperfSeconds int) (Sample, error) {
	var s Sample
	// What the previous bring-up left running (its teardown on both
	// ends) is not this one's work.
	if _, err := cpuwork.Settle(5 * time.Second); err != nil {
		return s, err
	}
	win, err := cpuwork.Start()
	if err != nil {
		return s, err
	}
	begin := time.Now()
	procs, err := c.Up(ctx)
	s.LinkUp = time.Since(begin)
	if err != nil {
		c.Down(ctx)
		return s, err
	}
	defer c.Down(ctx)
	if s.UpWork, s.UpShare, err = win.End(); err != nil {
		return s, err
	}
	if iperfSeconds == 0 {
		return s, nil
	}
	if s.RTT, err = Ping(ClientNS, TunServer, 100); err != nil {
		return s, err
	}
	cpu0, _, err := usage(procs)
	if err != nil {
		return s, err
	}
	srv0, err := l.ServerCPU()
	if err != nil {
		return s, err
	}
	// Pings under load: ten a second from the second second, ending
	// before iperf3 does.
	type rtt struct {
		d   time.Duration
		err error
	}
	loaded := make(chan rtt, 1)
	go func() {
		d, err := PingEvery(ClientNS, TunServer, max(1, (iperfSeconds-2)*10), "0.1")
		loaded <- rtt{d, err}
	}()
	var bytes int64
	s.Mbps, bytes, err = Throughput(iperfSeconds)
	r := <-loaded
	if err != nil {
		return s, err
	}
	if r.err != nil {
		return s, fmt.Errorf("pings under load: %w", r.err)
	}
	s.RTTLoad = r.d
	cpu1, rss, err := usage(procs)
	if err != nil {
		return s, err
	}
	srv1, err := l.ServerCPU()
	if err != nil {
		return s, err
	}
	if bytes <= 0 {
		return s, fmt.Errorf("iperf3 moved %d bytes", bytes)
	}
	gb := float64(bytes) / 1e9
	s.CPUPerGB = (cpu1 - cpu0).Seconds() / gb
	s.ServerCPU = (srv1 - srv0).Seconds() / gb
	s.PeakRSSKiB = rss
	if c.Redial != nil {
		if win, err = cpuwork.Start(); err != nil {
			return s, err
		}
		if s.Redial, err = c.Redial(ctx); err != nil {
			return s, err
		}
		if s.RedialWork, s.RedialShare, err = win.End(); err != nil {
			return s, err
		}
	}
	return s, nil
}

// usage sums the CPU time and peak RSS of the client's processes; a
// process that is gone is an error, not a zero.
func usage(procs []int) (time.Duration, int, error) {
	var cpu time.Duration
	var rss int
	for _, p := range procs {
		c, r, err := ProcUsage(p)
		if err != nil {
			return 0, 0, err
		}
		cpu, rss = cpu+c, rss+r
	}
	return cpu, rss, nil
}

// PrintTable prints the results side by side, each with its ratios to its
// anchor and its throughput as a share of the SSH stream ceiling.
func PrintTable(w io.Writer, res []BenchResult) {
	by := map[string]BenchResult{}
	var ceiling float64
	for _, r := range res {
		by[r.Name] = r
		if r.Stream {
			ceiling = r.Median.Mbps
		}
	}
	width := len("contender")
	for _, r := range res {
		width = max(width, len(r.Name))
	}
	fmt.Fprintf(w, "%-*s %-11s %7s %8s %8s %8s %7s %7s %7s  %s\n", width, "contender", "where", "up (s)", "RTT (ms)", "loaded", "Mbit/s",
		"CPU c", "CPU s", "RSS MiB", "vs anchor: throughput, RTT idle, RTT loaded, link-up")
	for _, r := range res {
		m := r.Median
		up, rtt, rttLoad := fmt.Sprintf("%.3f", m.LinkUp.Seconds()), fmt.Sprintf("%.3f", ms(m.RTT)), fmt.Sprintf("%.3f", ms(m.RTTLoad))
		if r.Stream {
			up, rtt, rttLoad = "-", "-", "-"
		}
		vs := "anchor"
		if a, ok := by[r.Anchor]; ok {
			vs = fmt.Sprintf("x%.2f, x%.2f, x%.2f, x%.2f (vs %s)", ratio(m.Mbps, a.Median.Mbps), ratio(ms(m.RTT), ms(a.Median.RTT)),
				ratio(ms(m.RTTLoad), ms(a.Median.RTTLoad)), ratio(m.LinkUp.Seconds(), a.Median.LinkUp.Seconds()), a.Name)
		} else if r.Stream {
			vs = "ceiling"
		}
		if ceiling > 0 && !r.Stream && r.Where == "host kernel" {
			vs += fmt.Sprintf("; %.0f%% of the ceiling", 100*m.Mbps/ceiling)
		}
		if m.Redial > 0 {
			vs += fmt.Sprintf("; redial %.3f s, x%.2f of its link-up", m.Redial.Seconds(), ratio(m.Redial.Seconds(), m.LinkUp.Seconds()))
		}
		fmt.Fprintf(w, "%-*s %-11s %7s %8s %8s %8.1f %7.2f %7.2f %7.1f  %s\n", width, r.Name, r.Where, up, rtt, rttLoad, m.Mbps,
			m.CPUPerGB, m.ServerCPU, float64(m.PeakRSSKiB)/1024, vs)
	}
	fmt.Fprintln(w, "medians; up = start until usable; RTT idle, and loaded = during the iperf3 run (10 pings a second)")
	fmt.Fprintln(w, "CPU c = client CPU s/GB and RSS: the client-side processes that carry the link (vpn-pppssh and its pppd; ssh and pppd; ssh);")
	fmt.Fprintln(w, "CPU s = server CPU s/GB: every process below the lab's sshd listener (sessions, sudo, pppd, serve, cat)")
	fmt.Fprintln(w, "a row marked (again) is its anchor run a second time in the same rounds: the ratios there are the noise band")
	fmt.Fprintln(w, "redial = the server's carrier (pppd or serve) killed with SIGKILL until the link's state says up again (PERSIST)")
	fmt.Fprintln(w, "compare rows of the same kernel only: User-Mode Linux makes every system call expensive")
	fmt.Fprintf(w, "every contender uses %s (vpn-pppssh by Ciphers in the lab's ~/.ssh/config; the ssh ones are given -c)\n", BenchCipher)
	printWork(w, res, width)
}

// printWork prints what each link-up and redial cost the machine: where
// the CPUs were busy for most of the time, only less work would be
// faster; where they were not, something waited.
func printWork(w io.Writer, res []BenchResult, width int) {
	fmt.Fprintf(w, "\n%-*s %-11s %7s %8s %5s %10s %8s %5s\n", width, "contender", "where", "up (s)", "work (s)", "busy", "redial (s)", "work (s)", "busy")
	for _, r := range res {
		if r.Stream {
			continue
		}
		m := r.Median
		redial := fmt.Sprintf("%10s %8s %5s", "-", "-", "-")
		if m.Redial > 0 {
			redial = fmt.Sprintf("%10.3f %8.2f %4.0f%%", m.Redial.Seconds(), m.RedialWork.Seconds(), 100*m.RedialShare)
		}
		fmt.Fprintf(w, "%-*s %-11s %7.3f %8.2f %4.0f%% %s\n", width, r.Name, r.Where, m.LinkUp.Seconds(), m.UpWork.Seconds(), 100*m.UpShare, redial)
	}
	fmt.Fprintln(w, "work = CPU seconds the whole machine spent in the link-up or the redial (both ends, their kernels; the bench's own process left out,")
	fmt.Fprintln(w, "  not the commands it runs); busy = that work's share of what the machine's CPUs could have done meanwhile: near 100%, only less")
	fmt.Fprintln(w, "  work is faster; under UML the machine is its one CPU, on the host kernel every CPU of the host and all it runs (4 readings in")
	fmt.Fprintln(w, "  ticks of 10 ms: about +-30 ms of work)")
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func linkUps(s []Sample) []float64 {
	v := make([]float64, len(s))
	for i, x := range s {
		v[i] = x.LinkUp.Seconds()
	}
	slices.Sort(v)
	return v
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// median takes each metric's median separately.
func median(s []Sample) Sample {
	pick := func(f func(Sample) float64) float64 {
		v := make([]float64, len(s))
		for i, x := range s {
			v[i] = f(x)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	d := func(f func(Sample) time.Duration) time.Duration {
		return time.Duration(pick(func(x Sample) float64 { return float64(f(x)) }))
	}
	m := Sample{
		LinkUp:     d(func(x Sample) time.Duration { return x.LinkUp }),
		RTT:        d(func(x Sample) time.Duration { return x.RTT }),
		RTTLoad:    d(func(x Sample) time.Duration { return x.RTTLoad }),
		Redial:     d(func(x Sample) time.Duration { return x.Redial }),
		ServerCPU:  pick(func(x Sample) float64 { return x.ServerCPU }),
		Mbps:       pick(func(x Sample) float64 { return x.Mbps }),
		CPUPerGB:   pick(func(x Sample) float64 { return x.CPUPerGB }),
		PeakRSSKiB: int(pick(func(x Sample) float64 { return float64(x.PeakRSSKiB) })),
	}
	// A link-up's or redial's work and share are those of the sample
	// whose time is the median, so that the three belong together.
	up := medianOf(s, func(x Sample) time.Duration { return x.LinkUp })
	redial := medianOf(s, func(x Sample) time.Duration { return x.Redial })
	m.UpWork, m.UpShare = up.UpWork, up.UpShare
	m.RedialWork, m.RedialShare = redial.RedialWork, redial.RedialShare
	return m
}

// Demo brings one link up with vpn-pppssh, shows it working and takes it
// down again.
func (l *Lab) Demo(ctx context.Context, w io.Writer) error {
	conf := l.Config("demo", 1)
	fmt.Fprintf(w, "lab: client namespace %s (%s), server namespace %s (%s) running OpenSSH sshd\n", ClientNS, ClientIP, ServerNS, ServerIP)
	fmt.Fprintf(w, "\n$ vpn-pppssh -c %s start\n", conf)
	begin := time.Now()
	out, code := l.Client(ctx, "-c", conf, "start")
	up := time.Since(begin)
	fmt.Fprint(w, out)
	if code != 0 {
		return fmt.Errorf("start failed with exit %d", code)
	}
	defer l.Client(ctx, "-c", conf, "stop")
	rtt, err := Ping(ClientNS, TunServer, 20)
	if err != nil {
		return err
	}
	mbps, _, err := Throughput(3)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\n$ vpn-pppssh -c %s status\n", conf)
	out, _ = l.Client(ctx, "-c", conf, "status")
	fmt.Fprint(w, out)
	fmt.Fprintf(w, "\nlink-up time %v, ping RTT %.3f ms (20 pings), iperf3 %.1f Mbit/s (3 s, client to server)\n",
		up.Round(time.Millisecond), ms(rtt), mbps)
	fmt.Fprintf(w, "\n$ vpn-pppssh -c %s stop\n", conf)
	out, code = l.Client(ctx, "-c", conf, "stop")
	fmt.Fprint(w, out)
	if code != 0 {
		return fmt.Errorf("stop failed with exit %d", code)
	}
	ok, left := WaitFor(5*time.Second, func() (bool, string) {
		c, errC := PPPInterfaces(ClientNS)
		s, errS := PPPInterfaces(ServerNS)
		if errC != nil || errS != nil { // not looked at is not clean
			return false, fmt.Sprint(errC, errS)
		}
		p := Processes("pppd")
		return len(c)+len(s)+len(p) == 0, fmt.Sprint(c, s, p)
	})
	if !ok {
		return fmt.Errorf("left behind after stop: %s", left)
	}
	l.keepLog("demo")
	fmt.Fprintln(w, "torn down: no ppp interface and no pppd on either side")
	return nil
}

// medianOf is the sample whose f is the median (the upper one of an even
// count, as median takes).
func medianOf(s []Sample, f func(Sample) time.Duration) Sample {
	sorted := slices.Clone(s)
	slices.SortStableFunc(sorted, func(a, b Sample) int { return cmp.Compare(f(a), f(b)) })
	return sorted[len(sorted)/2]
}
