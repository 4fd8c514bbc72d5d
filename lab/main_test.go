package lab_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
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
	shards := labShards()
	claims := filepath.Join(dir, "claims")
	if err := os.Mkdir(claims, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	results := make([]shardResult, shards)
	var wg sync.WaitGroup
	for i := range shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = runShard(ctx, dir, bin, claims, i, self)
		}()
	}
	wg.Wait()
	code := 0
	for i, r := range results {
		if shards > 1 {
			fmt.Printf("=== lab shard %d of %d\n", i+1, shards)
		}
		os.Stdout.Write(r.output)
		if r.err != nil {
			fmt.Fprintln(os.Stderr, r.err)
			code = 1
		} else if r.code != 0 {
			code = r.code
		}
	}
	fmt.Printf("lab: ran inside %s (%d at once) in %v\n", labKind(), shards, time.Since(start).Round(time.Millisecond))
	return code
}

type shardResult struct {
	output []byte
	code   int
	err    error
}

// runShard runs this test binary, with its own flags, in one lab of its
// own (its own work directory, keys and sshd). Every shard is given every
// test: the first to claim a test runs it, the others skip it (needLab), so
// the shards share the work as it comes, whatever each test costs.
func runShard(ctx context.Context, dir, bin, claims string, i int, self string) shardResult {
	work := filepath.Join(dir, fmt.Sprintf("shard%d", i+1))
	if err := os.Mkdir(work, 0o755); err != nil {
		return shardResult{err: err}
	}
	env := []string{"VPN_LAB_DIR=" + work, "VPN_LAB_BIN=" + bin, claimsEnv + "=" + claims}
	if os.Getenv("VPN_LAB_SOAK") != "" {
		env = append(env, "VPN_LAB_SOAK="+os.Getenv("VPN_LAB_SOAK"))
	}
	r, err := lab.Run(ctx, work, append([]string{self}, os.Args[1:]...), env)
	return shardResult{output: r.Output, code: r.ExitCode, err: err}
}

// labShards is how many labs run at once: one User-Mode Linux kernel per
// core (each is one host thread at a time), at most VPN_LAB_SHARDS. A host
// with PPP runs one: its labs would share the host's network namespaces.
func labShards() int {
	if lab.HostHasPPP() {
		return 1
	}
	n := runtime.NumCPU()
	if v, err := strconv.Atoi(os.Getenv("VPN_LAB_SHARDS")); err == nil && v > 0 {
		n = v
	}
	return max(1, min(n, 4))
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

// needLab returns the lab or skips the test with the reason it cannot run,
// or because another lab has claimed it.
func needLab(t *testing.T) *lab.Lab {
	t.Helper()
	if theLab == nil {
		t.Skip(skipReason)
	}
	if !claim(t) {
		t.Skip("run by another lab shard")
	}
	return theLab
}

// claimsEnv names the directory, shared by every shard through the host's
// file system, where a shard claims a top-level test by creating a file of
// its name (O_EXCL: exactly one shard succeeds).
const claimsEnv = "VPN_LAB_CLAIMS"

var (
	claimMu sync.Mutex
	claimed = map[string]bool{}
)

func claim(t *testing.T) bool {
	dir := os.Getenv(claimsEnv)
	if dir == "" {
		return true
	}
	top, _, _ := strings.Cut(t.Name(), "/")
	claimMu.Lock()
	defer claimMu.Unlock()
	if mine, seen := claimed[top]; seen {
		return mine
	}
	f, err := os.OpenFile(filepath.Join(dir, top), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	switch {
	case err == nil:
		f.Close()
		claimed[top] = true
	case errors.Is(err, fs.ErrExist):
		claimed[top] = false
	default:
		t.Fatalf("claiming %s: %v", top, err)
	}
	return claimed[top]
}
