// Command vpn-lab runs vpn-pppssh in the lab (see package lab): a real
// PPP-over-SSH link between two network namespaces, under User-Mode Linux
// when the host kernel has no PPP.
//
//	vpn-lab [--bin PATH] demo     bring a link up, ping it, measure it, tear it down
//	vpn-lab [--bin PATH] bench    the HOWTO recipe and vpn-pppssh side by side
package main

import (
	"context"
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
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 || (fs.Arg(0) != "demo" && fs.Arg(0) != "bench") {
		return errors.New("usage: vpn-lab [--bin PATH] demo|bench")
	}
	if *cycles < 0 || *cycles > 50 || *rounds < 1 || *rounds > 20 || *seconds < 1 || *seconds > 60 {
		return errors.New("--cycles must be 0-50, --rounds 1-20 and --seconds 1-60")
	}
	if lab.Inside() {
		return inside(ctx, fs.Arg(0), *bin, *cycles, *rounds, *seconds)
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
	ctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
	defer cancel()
	r, err := lab.Run(ctx, dir, append([]string{self, "--bin", abs}, args...), []string{"VPN_LAB_DIR=" + dir, "VPN_LAB_KEEP_LOG=" + fmt.Sprint(*keep)})
	os.Stdout.Write(r.Output)
	if err != nil {
		return err
	}
	if r.ExitCode != 0 {
		return fmt.Errorf("%s failed inside the lab (exit %d)", fs.Arg(0), r.ExitCode)
	}
	return nil
}

func inside(ctx context.Context, what, bin string, cycles, rounds, seconds int) error {
	l, err := lab.Setup(os.Getenv("VPN_LAB_DIR"), bin)
	if err != nil {
		return fmt.Errorf("lab setup: %w", err)
	}
	defer l.Close()
	if what == "demo" {
		return l.Demo(ctx, os.Stdout)
	}
	return l.Bench(ctx, os.Stdout, cycles, rounds, seconds)
}
