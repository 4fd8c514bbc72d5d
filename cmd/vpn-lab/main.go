// Command vpn-lab runs vpn-pppssh in the lab (see package lab): a real
// PPP-over-SSH link between two network namespaces, under User-Mode Linux
// when the host kernel has no PPP.
//
//	vpn-lab [--bin PATH] demo     bring a link up, ping it, measure it, tear it down
//	vpn-lab [--bin PATH] bench    six ways over SSH side by side: the HOWTO recipe and
//	                              MODE=ppp under User-Mode Linux; ssh -w, MODE=tun over
//	                              OpenSSH's forwarding and through the server helper, and
//	                              one ssh byte stream on the host's kernel
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"github.com/vpn-pppssh/vpn-pppssh/lab"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "vpn-lab:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := pflag.NewFlagSet("vpn-lab", pflag.ContinueOnError)
	bin := fs.String("bin", "bin/vpn-pppssh", "vpn-pppssh binary to test")
	cycles := fs.Int("cycles", 8, "bench: bring-ups per contender without traffic (link-up time)")
	rounds := fs.Int("rounds", 3, "bench: bring-ups per contender with ping and iperf3")
	seconds := fs.Int("seconds", 4, "bench: iperf3 seconds per bring-up")
	keep := fs.Bool("keep", false, "keep the lab's folder (keys, logs) for inspection")
	cipher := fs.String("cipher", lab.BenchCipher, "bench: the cipher of every contender: aes128-gcm@openssh.com or chacha20-poly1305@openssh.com")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cipher != "aes128-gcm@openssh.com" && *cipher != "chacha20-poly1305@openssh.com" {
		return fmt.Errorf("--cipher %q: aes128-gcm@openssh.com or chacha20-poly1305@openssh.com", *cipher)
	}
	lab.BenchCipher = *cipher
	if lab.Inside() {
		return inside(ctx, fs.Arg(0), *bin, *cycles, *rounds, *seconds)
	}
	// bench is both parts: bench-uml (PPP, in the lab's kernel) and
	// bench-host (the tun modes, on this kernel); each runs alone too.
	parts := map[string][]string{"demo": {"demo"}, "bench": {"bench-uml", "bench-host"},
		"bench-uml": {"bench-uml"}, "bench-host": {"bench-host"}}[fs.Arg(0)]
	if fs.NArg() != 1 || parts == nil {
		return errors.New("usage: vpn-lab [flags] demo|bench|bench-uml|bench-host")
	}
	if *cycles < 0 || *cycles > 50 || *rounds < 1 || *rounds > 20 || *seconds < 1 || *seconds > 60 {
		return errors.New("--cycles must be 0-50, --rounds 1-20 and --seconds 1-60")
	}
	if os.Geteuid() != 0 {
		return errors.New("the lab needs root (namespaces, accounts, sshd)")
	}
	abs, err := filepath.Abs(*bin)
	if err != nil {
		return err
	}
	if _, err := os.Stat(abs); err != nil {
		return fmt.Errorf("vpn-pppssh binary: %w (make build)", err)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "vpnlab-")
	if err != nil {
		return err
	}
	if *keep {
		fmt.Fprintln(os.Stderr, "vpn-lab: keeping", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	ctx, cancel := context.WithTimeout(ctx, 40*time.Minute)
	defer cancel()
	var results []lab.BenchResult
	for _, part := range parts {
		work := filepath.Join(dir, part)
		if err := os.Mkdir(work, 0o755); err != nil {
			return err
		}
		runIn := lab.Run
		if part == "bench-host" {
			runIn = lab.RunOnHost
		}
		argv := []string{self, "--bin", abs, "--cycles", fmt.Sprint(*cycles), "--rounds", fmt.Sprint(*rounds),
			"--seconds", fmt.Sprint(*seconds), "--cipher", *cipher, part}
		r, err := runIn(ctx, work, argv, []string{"VPN_LAB_DIR=" + work, "VPN_LAB_KEEP_LOG=" + fmt.Sprint(*keep)})
		os.Stdout.Write(r.Output)
		if err != nil {
			return err
		}
		if r.ExitCode != 0 {
			return fmt.Errorf("%s failed inside the lab (exit %d)", part, r.ExitCode)
		}
		if part != "demo" {
			b, err := os.ReadFile(filepath.Join(work, "bench.json"))
			if err != nil {
				return err
			}
			var rs []lab.BenchResult
			if err := json.Unmarshal(b, &rs); err != nil {
				return fmt.Errorf("%s results: %w", part, err)
			}
			results = append(results, rs...)
		}
	}
	if len(results) > 0 {
		fmt.Printf("\nvpn-lab bench: %d bring-ups without traffic, %d rounds of %d s of iperf3 per contender\n", *cycles, *rounds, *seconds)
		lab.PrintTable(os.Stdout, results)
	}
	return nil
}

func inside(ctx context.Context, what, bin string, cycles, rounds, seconds int) error {
	l, err := lab.Setup(os.Getenv("VPN_LAB_DIR"), bin)
	if err != nil {
		return fmt.Errorf("lab setup: %w", err)
	}
	defer l.Close()
	if err := l.UseCipher(lab.BenchCipher); err != nil {
		return err
	}
	var cs []lab.Contender
	switch what {
	case "demo":
		return l.Demo(ctx, os.Stdout)
	case "bench-uml":
		recipe := l.Recipe()
		cs = []lab.Contender{recipe, lab.Again(recipe, l.Recipe()), l.Tool("vpn-pppssh MODE=ppp", recipe.Name),
			l.Tool("vpn-pppssh MODE=ppp, server helper", recipe.Name, "SERVER_HELPER="+bin),
			l.Tool("vpn-pppssh MODE=ppp, helper, SERVER_PTY=no", recipe.Name, "SERVER_HELPER="+bin, "SERVER_PTY=no")}
	case "bench-host":
		sshw := l.SSHW()
		cs = []lab.Contender{sshw, lab.Again(sshw, l.SSHW()),
			l.Tool("vpn-pppssh MODE=tun, OpenSSH forwarding", sshw.Name, "MODE=tun", "SERVER_USERNAME=root"),
			l.Tool("vpn-pppssh MODE=tun, server helper", sshw.Name, "MODE=tun", "SERVER_HELPER="+bin),
			l.Tool("vpn-pppssh MODE=tun, helper, OFFLOAD=no", sshw.Name, "MODE=tun", "SERVER_HELPER="+bin, "OFFLOAD=no"),
			l.SSHStream()}
	default:
		return fmt.Errorf("unknown lab part %q", what)
	}
	res, err := l.Bench(ctx, os.Stdout, cs, cycles, rounds, seconds)
	if err != nil {
		return err
	}
	if err := l.ProfileUps(ctx, os.Stdout, cs); err != nil {
		return err
	}
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(os.Getenv("VPN_LAB_DIR"), "bench.json"), b, 0o644)
}
