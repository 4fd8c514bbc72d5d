package cpuwork

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestParseCPULine(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	busy, total, err := parseCPULine("cpu  100 2 30 500 8 1 4 5 7 0")
	if err != nil {
		t.Fatal(err)
	}
	if want := 1420 * time.Millisecond; busy != want { // 100+2+30+1+4+5 ticks; guest is in user
		t.Errorf("busy = %v, want %v", busy, want)
	}
	if want := 6500 * time.Millisecond; total != want { // busy + idle 500 + iowait 8
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
		return
	}
	w, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestWindowCountsOtherProcesses$")
	cmd.Env = append(os.Environ(), "CPUWORK_SPIN=1")
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
