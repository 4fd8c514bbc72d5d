package cpuwork

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseCPULine(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	busy, total, err := parseCPULine("cpu  100 2 30 500 8 1 4 5 7 0")
	if err != nil {
		t.Fatal(err)
	}
	if want := 1370 * time.Millisecond; busy != want { // 100+2+30+1+4 ticks; guest is in user, steal is not work
		t.Errorf("busy = %v, want %v", busy, want)
	}
	if want := 6500 * time.Millisecond; total != want { // busy + idle 500 + iowait 8 + steal 5
		t.Errorf("total = %v, want %v", total, want)
	}
	for _, bad := range []string{"", "cpu0 1 2 3 4 5 6 7 8", "cpu 1 2 3", "cpu 1 2 x 4 5 6 7 8"} {
		if _, _, err := parseCPULine(bad); err == nil {
			t.Errorf("parseCPULine(%q) took it", bad)
		}
	}
}

// End leaves the measuring process's own CPU out, and gives the share of
// the machine's capacity.
func TestWindowLeavesSelfOut(t *testing.T) {
	machine := []time.Duration{10 * time.Second, 40 * time.Second, 10500 * time.Millisecond, 41 * time.Second}
	self := []time.Duration{time.Second, 1200 * time.Millisecond}
	readMachine = func() (time.Duration, time.Duration, error) {
		b, tot := machine[0], machine[1]
		machine = machine[2:]
		return b, tot, nil
	}
	readSelf = func() (time.Duration, error) {
		s := self[0]
		self = self[1:]
		return s, nil
	}
	defer func() { readMachine, readSelf = machineCPU, selfCPU }()
	w, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	work, share, err := w.End()
	if err != nil {
		t.Fatal(err)
	}
	if want := 300 * time.Millisecond; work != want { // 500 ms busy, 200 ms of them ours
		t.Errorf("work = %v, want %v", work, want)
	}
	if share < 0.299 || share > 0.301 { // of 1 s
		t.Errorf("share = %v, want 0.3", share)
	}
}

// A child that spins for a known CPU time shows up in the machine's work.
func TestWindowCountsOtherProcesses(t *testing.T) {
	if os.Getenv("CPUWORK_SPIN") != "" {
		spin(300 * time.Millisecond)
		if os.Getenv("CPUWORK_HOLD") != "" {
			fmt.Println("spun")
			io.Copy(io.Discard, os.Stdin) // alive until the parent lets go
		}
		return
	}
	w, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	cmd := spinner(false)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "PASS") {
		t.Fatalf("the spinning child: %v: %s", err, out)
	}
	child := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	work, share, err := w.End()
	if err != nil {
		t.Fatal(err)
	}
	// The machine counts in 10 ms ticks, sampled: allow a few either way.
	if child < 250*time.Millisecond || work < child-50*time.Millisecond {
		t.Errorf("the child used %v of CPU, the window counted %v of work", child, work)
	}
	if share <= 0 || share > 1 {
		t.Errorf("share = %v", share)
	}
}

// spin uses about d of this process's CPU time.
func spin(d time.Duration) {
	start, err := selfCPU()
	if err != nil {
		panic(err)
	}
	x := 0
	for {
		for range 1 << 16 {
			x++
		}
		if now, err := selfCPU(); err != nil || now-start >= d {
			break
		}
	}
	_ = x
}

func TestParseProcStat(t *testing.T) {
	// A command with spaces and parentheses, as a process may name itself.
	line := "4242 (a (b) c) S 17 4242 4242 0 -1 4194560 100 0 0 0 30 12 5 7 20 0 1 0 98765 1000 10 18446744073709551615"
	p, err := parseStat(line)
	if err != nil {
		t.Fatal(err)
	}
	want := Stat{Comm: "a (b) c", PPid: 17, Self: 420 * time.Millisecond, Children: 120 * time.Millisecond, Start: 98765}
	if p != want {
		t.Errorf("parseStat = %+v, want %+v", p, want)
	}
	for _, bad := range []string{"4242 no command", "4242 (x) S 1 2", "4242 (x) S x 4242 4242 0 -1 4194560 100 0 0 0 30 12 5 7 20 0 1 0 98765 1000"} {
		if _, err := parseStat(bad); err == nil {
			t.Errorf("parseStat(%q) took it", bad)
		}
	}
}

// A child that starts in the window and is alive at its end counts under
// its own name; one the bench ran to its end counts as the bench's
// commands.
func TestProfileByProcess(t *testing.T) {
	p, err := StartProfile()
	if err != nil {
		t.Fatal(err)
	}
	out, release := startHeld(t)
	defer release()
	if b, err := spinner(false).CombinedOutput(); err != nil {
		t.Fatalf("the child run to its end: %v: %s", err, b)
	}
	// The held child says when it has spun; it then waits on stdin.
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "spun\n" {
		t.Fatalf("the held child said %q, %v", line, err)
	}
	shares, work, err := p.End()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]time.Duration{}
	for _, s := range shares {
		got[s.Name] = s.CPU
	}
	name := filepath.Base(os.Args[0])
	if len(name) > 15 {
		name = name[:15] // the kernel's comm
	}
	if got[name] < 250*time.Millisecond {
		t.Errorf("the held child (%s) counted %v, want its 300 ms spin: %+v", name, got[name], shares)
	}
	if got["the bench's commands"] < 250*time.Millisecond {
		t.Errorf("the child run to its end counted %v, want its 300 ms spin: %+v", got["the bench's commands"], shares)
	}
	if work < got[name] {
		t.Errorf("the machine's work %v is less than one child's %v", work, got[name])
	}
}

// Settle returns once the machine is quiet, and not while a child keeps a
// CPU busy.
func TestSettle(t *testing.T) {
	_, release := startHeld(t)
	// The child spins for 300 ms of CPU: the machine is not idle while it
	// does, so Settle with a 50 ms limit gives up.
	settled, err := Settle(50 * time.Millisecond)
	release()
	if err != nil {
		t.Fatal(err)
	}
	if settled {
		t.Error("Settle said idle while a child spun")
	}
}

// spinner is this test binary run to spin for 300 ms of CPU; held, it
// then says "spun" and waits for its stdin to end.
func spinner(hold bool) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run", "^TestWindowCountsOtherProcesses$")
	cmd.Env = append(os.Environ(), "CPUWORK_SPIN=1")
	if hold {
		cmd.Env = append(cmd.Env, "CPUWORK_HOLD=1")
	}
	return cmd
}

// startHeld starts a held spinner; release ends it and checks its exit.
func startHeld(t *testing.T) (stdout io.Reader, release func()) {
	t.Helper()
	cmd := spinner(true)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	return out, func() {
		once.Do(func() {
			stdin.Close()
			if err := cmd.Wait(); err != nil {
				t.Errorf("the held child: %v", err)
			}
		})
	}
}
