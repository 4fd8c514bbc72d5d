package lab

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Bench compares the HOWTO recipe and vpn-pppssh over the same namespaces
// in one lab run, alternating so that drift hits both alike: cycles
// bring-ups without traffic for the link-up time, then rounds with ping and
// iperf3. It prints medians side by side with the ratio tool/recipe.
func (l *Lab) Bench(ctx context.Context, w io.Writer, cycles, rounds, iperfSeconds int) error {
	contenders := []Contender{l.Recipe(), l.Tool()}
	ups := make([][]Sample, 2)
	for i := range cycles {
		for j, c := range contenders {
			s, err := l.Measure(ctx, c, 0)
			if err != nil {
				return fmt.Errorf("cycle %d, %s: %w", i+1, c.Name, err)
			}
			ups[j] = append(ups[j], s)
		}
	}
	traffic := make([][]Sample, 2)
	for i := range rounds {
		for j, c := range contenders {
			s, err := l.Measure(ctx, c, iperfSeconds)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", i+1, c.Name, err)
			}
			traffic[j] = append(traffic[j], s)
			fmt.Fprintf(w, "round %d %-10s up %6.3fs  rtt %.3fms  %6.1f Mbit/s  cpu %.2fs  rss %.1f MiB\n", i+1, c.Name,
				s.LinkUp.Seconds(), ms(s.RTT), s.Mbps, s.CPU.Seconds(), float64(s.PeakRSSKiB)/1024)
		}
	}
	R, T := median(traffic[0]), median(traffic[1])
	R.LinkUp, T.LinkUp = median(append(ups[0], traffic[0]...)).LinkUp, median(append(ups[1], traffic[1]...)).LinkUp
	fmt.Fprintf(w, "\nmedians: link-up over %d bring-ups each, traffic over %d rounds of %ds each; one UML kernel, same namespaces\n",
		cycles+rounds, rounds, iperfSeconds)
	fmt.Fprintf(w, "%-30s %12s %12s %8s\n", "metric", "recipe", "vpn-pppssh", "ratio")
	row := func(name string, r, t float64, format string) {
		ratio := "-"
		if r != 0 {
			ratio = fmt.Sprintf("%.2f", t/r)
		}
		fmt.Fprintf(w, "%-30s %12s %12s %8s\n", name, fmt.Sprintf(format, r), fmt.Sprintf(format, t), ratio)
	}
	row("link-up time (s)", R.LinkUp.Seconds(), T.LinkUp.Seconds(), "%.3f")
	for j, c := range contenders {
		fmt.Fprintf(w, "%-30s %s\n", "  "+c.Name+" bring-ups (s)", spread(append(ups[j], traffic[j]...)))
	}
	row("ping RTT avg (ms)", ms(R.RTT), ms(T.RTT), "%.3f")
	row("iperf3 client->server (Mbit/s)", R.Mbps, T.Mbps, "%.1f")
	row("client CPU, carrier (s)", R.CPU.Seconds(), T.CPU.Seconds(), "%.2f")
	row("client CPU, local pppd (s)", R.PPPDCPU.Seconds(), T.PPPDCPU.Seconds(), "%.2f")
	row("peak RSS, carrier (MiB)", float64(R.PeakRSSKiB)/1024, float64(T.PeakRSSKiB)/1024, "%.1f")
	fmt.Fprintln(w, "ratio = vpn-pppssh / recipe; carrier = ssh for the recipe, the vpn-pppssh background process for the tool")
	return nil
}

// spread lists the link-up times, sorted.
func spread(s []Sample) string {
	v := make([]float64, len(s))
	for i, x := range s {
		v[i] = x.LinkUp.Seconds()
	}
	slices.Sort(v)
	return strings.Trim(strings.ReplaceAll(fmt.Sprintf("%.2f", v), " ", ", "), "[]")
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
	return Sample{
		LinkUp:     d(func(x Sample) time.Duration { return x.LinkUp }),
		RTT:        d(func(x Sample) time.Duration { return x.RTT }),
		Mbps:       pick(func(x Sample) float64 { return x.Mbps }),
		CPU:        d(func(x Sample) time.Duration { return x.CPU }),
		PPPDCPU:    d(func(x Sample) time.Duration { return x.PPPDCPU }),
		PeakRSSKiB: int(pick(func(x Sample) float64 { return float64(x.PeakRSSKiB) })),
	}
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
	mbps, err := Throughput(3)
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
