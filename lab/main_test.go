package lab_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
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
	// The Debian package, as make deb lays it out: TestDebianPackage
	// installs it inside the lab.
	pkg := exec.Command("make", "-s", "-C", "..", "deb-package")
	pkg.Stdout, pkg.Stderr = io.Discard, os.Stderr
	if err := pkg.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the .deb (make deb-package):", err)
		return 1
	}
	debs, err := filepath.Glob("../bin/vpn-pppssh_*.deb")
	if err != nil || len(debs) != 1 {
		fmt.Fprintln(os.Stderr, "make deb-package left", debs, "in bin/, want one .deb:", err)
		return 1
	}
	if debPath, err = filepath.Abs(debs[0]); err != nil {
		fmt.Fprintln(os.Stderr, err)
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
	hostLab := slices.Contains(shards, true)
	results := make([]shardResult, len(shards))
	var wg sync.WaitGroup
	for i, onHost := range shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = runShard(ctx, dir, bin, claims, i, onHost, hostLab, self)
		}()
	}
	wg.Wait()
	code := 0
	for i, r := range results {
		if len(shards) > 1 {
			fmt.Printf("=== lab shard %d of %d (%s)\n", i+1, len(shards), r.kind)
		}
		os.Stdout.Write(r.output)
		if r.err != nil {
			fmt.Fprintln(os.Stderr, r.err)
			code = 1
		} else if r.code != 0 {
			code = r.code
		}
	}
	fmt.Printf("lab: %d labs at once in %v\n", len(shards), time.Since(start).Round(time.Millisecond))
	return code
}

// debEnv names the .deb that make deb-package built, for TestDebianPackage.
const debEnv = "VPN_LAB_DEB"

// hostLabEnv is set when one of the labs runs on the host's kernel: the
// tun and tap tests for it alone (needHostTunLab) run there.
const hostLabEnv = "VPN_LAB_HOST_TUN"

// scriptsEnv names the repository's scripts directory (the ppp hooks), as
// an absolute path: inside a lab the working directory is the shard's.
const scriptsEnv = "VPN_LAB_SCRIPTS"

var debPath string

type shardResult struct {
	kind   string
	output []byte
	code   int
	err    error
}

// runShard runs this test binary, with its own flags, in one lab of its
// own (its own work directory, keys and sshd). Every shard is given every
// test: the first to claim a test runs it, the others skip it (needLab), so
// the shards share the work as it comes, whatever each test costs.
func runShard(ctx context.Context, dir, bin, claims string, i int, onHost, hostLab bool, self string) shardResult {
	kind := "User-Mode Linux"
	if onHost {
		kind = "the host kernel"
	}
	work := filepath.Join(dir, fmt.Sprintf("shard%d", i+1))
	if err := os.Mkdir(work, 0o755); err != nil {
		return shardResult{kind: kind, err: err}
	}
	env := []string{"VPN_LAB_DIR=" + work, "VPN_LAB_BIN=" + bin, claimsEnv + "=" + claims, debEnv + "=" + debPath}
	if scripts, err := filepath.Abs("../scripts"); err == nil {
		env = append(env, scriptsEnv+"="+scripts)
	}
	if hostLab {
		env = append(env, hostLabEnv+"=1")
	}
	if os.Getenv("VPN_LAB_SOAK") != "" {
		env = append(env, "VPN_LAB_SOAK="+os.Getenv("VPN_LAB_SOAK"))
	}
	argv := append([]string{self}, os.Args[1:]...)
	run := lab.Run
	if onHost {
		run = lab.RunOnHost
	}
	r, err := run(ctx, work, argv, env)
	return shardResult{kind: kind, output: r.Output, code: r.ExitCode, err: err}
}

// labShards says which labs run at once, true for one on the host's
// kernel: one User-Mode Linux kernel per core (each is one host thread at a
// time), at most VPN_LAB_SHARDS, and beside them one lab on the host's
// kernel for the tun and tap modes, which need no PPP. A host with PPP
// runs one lab: more would share the host's network namespaces.
func labShards() []bool {
	if lab.HostHasPPP() {
		return []bool{true}
	}
	n := runtime.NumCPU()
	if v, err := strconv.Atoi(os.Getenv("VPN_LAB_SHARDS")); err == nil && v > 0 {
		n = v
	}
	shards := make([]bool, max(1, min(n, 4)))
	if _, err := os.Stat("/dev/net/tun"); err == nil {
		shards = append(shards, true)
	}
	return shards
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
	if tunTest(t) {
		return theLab // claimed by needTunLab
	}
	if lab.OnHostKernel() && !lab.HostHasPPP() {
		t.Skip("needs PPP: runs in the User-Mode Linux labs")
	}
	if !claim(t, "") {
		t.Skip("run by another lab shard")
	}
	return theLab
}

// needTunLab is needLab for the tun and tap modes, which run once on each
// kind of kernel: the host's and User-Mode Linux.
func needTunLab(t *testing.T) *lab.Lab {
	t.Helper()
	if theLab == nil {
		t.Skip(skipReason)
	}
	kernel := "uml"
	if lab.OnHostKernel() {
		kernel = "host"
	}
	if !claim(t, kernel+"-") {
		t.Skip("run by another lab shard on this kind of kernel")
	}
	top, _, _ := strings.Cut(t.Name(), "/")
	claimMu.Lock()
	tunTests[top] = true
	claimMu.Unlock()
	return theLab
}

// needHostTunLab is needTunLab for the tun and tap tests that run on the
// host kernel's lab only: the User-Mode Linux labs are the slow ones, and
// the PPP tests can run nowhere else. Without a lab on the host's kernel
// (no /dev/net/tun there), they run under User-Mode Linux.
func needHostTunLab(t *testing.T) *lab.Lab {
	t.Helper()
	if theLab != nil && !lab.OnHostKernel() && os.Getenv(hostLabEnv) != "" {
		t.Skip("runs in the lab on the host kernel")
	}
	return needTunLab(t)
}

// tunTest reports whether t belongs to a test that needTunLab claimed.
func tunTest(t *testing.T) bool {
	top, _, _ := strings.Cut(t.Name(), "/")
	claimMu.Lock()
	defer claimMu.Unlock()
	return tunTests[top]
}

// claimsEnv names the directory, shared by every shard through the host's
// file system, where a shard claims a top-level test by creating a file of
// its name (O_EXCL: exactly one shard succeeds).
const claimsEnv = "VPN_LAB_CLAIMS"

var (
	claimMu  sync.Mutex
	claimed  = map[string]bool{}
	tunTests = map[string]bool{}
)

func claim(t *testing.T, prefix string) bool {
	dir := os.Getenv(claimsEnv)
	if dir == "" {
		return true
	}
	top, _, _ := strings.Cut(t.Name(), "/")
	top = prefix + top
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
