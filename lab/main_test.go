package lab_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/vpn-pppssh/vpn-pppssh/lab"
)

// The end-to-end tests run in two halves. Outside, TestMain builds
// vpn-pppssh and runs this same test binary inside a lab (a User-Mode Linux
// kernel when the host has no PPP), passing its flags through. Inside, it
// sets up namespaces, accounts and sshd once and runs the tests.

var (
	theLab      *lab.Lab
	skipReason  string
	raceEnabled bool // set by race_test.go
)

func TestMain(m *testing.M) {
	if lab.Inside() {
		os.Exit(runInside(m))
	}
	if reason := cannotRunLab(); reason != "" {
		skipReason = reason
		os.Exit(m.Run())
	}
	os.Exit(runOutside())
}

func cannotRunLab() string {
	if raceEnabled && !lab.HostHasPPP() {
		return "built with -race, which cannot run inside User-Mode Linux: run the lab tests without -race (make lab)"
	}
	if os.Geteuid() != 0 {
		return "the lab needs root (namespaces, sshd, sudo)"
	}
	if !lab.HostHasPPP() {
		if _, err := os.Stat(lab.UMLKernel); err != nil {
			return "no PPP in this kernel and no " + lab.UMLKernel + " (apt-get install user-mode-linux)"
		}
	}
	for _, p := range []string{"/usr/sbin/pppd", "/usr/sbin/sshd", "/usr/bin/sudo", "/usr/bin/ssh-keygen"} {
		if _, err := os.Stat(p); err != nil {
			return p + " is missing (make deps installs it)"
		}
	}
	return ""
}

func runOutside() int {
	dir, err := os.MkdirTemp("", "vpnlab-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "vpn-pppssh")
	build := exec.Command("go", "build", "-o", bin, "../cmd/vpn-pppssh")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building vpn-pppssh:", err)
		return 1
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	start := time.Now()
	env := []string{"VPN_LAB_DIR=" + dir, "VPN_LAB_BIN=" + bin}
	if os.Getenv("VPN_LAB_SOAK") != "" {
		env = append(env, "VPN_LAB_SOAK="+os.Getenv("VPN_LAB_SOAK"))
	}
	r, err := lab.Run(ctx, dir, append([]string{self}, os.Args[1:]...), env)
	os.Stdout.Write(r.Output)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("lab: ran inside %s in %v\n", labKind(), time.Since(start).Round(time.Millisecond))
	return r.ExitCode
}

func labKind() string {
	if lab.HostHasPPP() {
		return "the host kernel (it has PPP)"
	}
	return "User-Mode Linux"
}

func runInside(m *testing.M) int {
	l, err := lab.Setup(os.Getenv("VPN_LAB_DIR"), os.Getenv("VPN_LAB_BIN"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "lab setup:", err)
		return 1
	}
	theLab = l
	code := m.Run()
	l.Close()
	return code
}

// needLab returns the lab or skips the test with the reason it cannot run.
func needLab(t *testing.T) *lab.Lab {
	t.Helper()
	if theLab == nil {
		t.Skip(skipReason)
	}
	return theLab
}
