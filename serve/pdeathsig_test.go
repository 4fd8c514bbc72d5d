package serve

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vpn-pppssh/vpn-pppssh/internal/rundir"
	"github.com/vpn-pppssh/vpn-pppssh/pppssh"
)

// helperEnv makes the test binary a server half (TestHelperProcess).
const helperEnv = "VPN_PPPSSH_SERVE_TEST_HELPER"

// TestHelperProcess is the server half that TestKilledHelperTakesItsPPPD
// kills: it serves one link on its stdin and stdout with the policy and
// state directory under the folder in helperEnv.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(helperEnv)
	if dir == "" {
		t.Skip("run by TestKilledHelperTakesItsPPPD")
	}
	err := Run(context.Background(), Options{
		PolicyPath: filepath.Join(dir, "server.conf"), StateDir: rundir.Dir(filepath.Join(dir, "run")),
		Account: Account{UID: 1000, Name: "u1000"}, Stdin: os.Stdin, Stdout: os.Stdout,
		Log: slog.New(slog.DiscardHandler), kernel: func(pppssh.Policy, pppssh.Request) error { return nil },
	})
	t.Fatalf("the helper returned: %v", err)
}

// A helper killed outright (SIGKILL: no cleanup of its own) takes its
// pppd with it: the kernel sends pppd SIGTERM (Pdeathsig).
func TestKilledHelperTakesItsPPPD(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pppd.pid")
	fake := filepath.Join(dir, "pppd")
	script := "#!/bin/sh\necho $$ > " + pidFile + ".tmp\nmv " + pidFile + ".tmp " + pidFile + "\nexec sleep 60\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "server.conf"), []byte(strings.Replace(labPolicy, "PPPD=/bin/true", "PPPD="+fake, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	helper := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	helper.Env = append(os.Environ(), helperEnv+"="+dir)
	in, err := helper.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { helper.Process.Kill(); helper.Wait() }()
	if _, err := in.Write([]byte(request("a", "198.51.100.2", "198.51.100.1", "") + "\n")); err != nil {
		t.Fatal(err)
	}
	var pppd int
	for deadline := time.Now().Add(10 * time.Second); pppd == 0; {
		if b, err := os.ReadFile(pidFile); err == nil {
			if pppd, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil || pppd <= 0 {
				t.Fatalf("fake pppd wrote pid %q", b)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the helper did not start its pppd within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Not our child: reap nothing, but make sure it is gone, whatever
	// the result, so the test leaves no process behind.
	defer syscall.Kill(pppd, syscall.SIGKILL)
	if err := helper.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	helper.Wait()
	for deadline := time.Now().Add(5 * time.Second); ; {
		if !running(pppd) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pppd (pid %d) still runs 5s after its helper was killed", pppd)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// running reports whether pid is a live process (not a zombie).
func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) STATE ...: the state follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
