// Package cpuwork measures the CPU work a whole machine does over a window
// of time, less the measuring process's own: the bench's way to tell a
// link-up that waits (on timers, on the network) from one that is as fast
// as the machine can do its work. Under User-Mode Linux the machine is the
// UML kernel, with its one CPU.
package cpuwork

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// machineCPU reads the first line of /proc/stat: the time every CPU of the
// machine (of the User-Mode Linux kernel, under UML) has spent busy, and
// in all, since boot. Busy is user, nice, system, irq and softirq (guest
// time is already in user); idle, iowait and steal (time a hypervisor
// gave to others) are not work done here.
func machineCPU() (busy, total time.Duration, err error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0, 0, fmt.Errorf("/proc/stat is empty: %v", sc.Err())
	}
	return parseCPULine(sc.Text())
}

// parseCPULine reads /proc/stat's "cpu" line (proc(5)).
func parseCPULine(line string) (busy, total time.Duration, err error) {
	fields := strings.Fields(line)
	if len(fields) < 9 || fields[0] != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var v [8]int64
	for i := range v {
		if v[i], err = strconv.ParseInt(fields[i+1], 10, 64); err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: field %d of %q: %w", i+1, line, err)
		}
	}
	user, nice, system, idle, iowait, irq, softirq, steal := v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]
	b := user + nice + system + irq + softirq
	return ticks(b), ticks(b + idle + iowait + steal), nil
}

// ticks converts /proc/stat's USER_HZ ticks (100 a second on Linux).
func ticks(n int64) time.Duration { return time.Duration(n) * time.Second / 100 }

// rusage is the CPU time of who: RUSAGE_SELF, this process (the bench's
// own polling and bookkeeping, which a Window leaves out of the machine's
// work), or RUSAGE_CHILDREN, the children it waited for.
func rusage(who int) (time.Duration, error) {
	var ru unix.Rusage
	if err := unix.Getrusage(who, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// selfCPU is this process's own CPU time.
func selfCPU() (time.Duration, error) { return rusage(unix.RUSAGE_SELF) }

// What Start reads; tests replace them.
var (
	readMachine = machineCPU
	readSelf    = selfCPU
)

// A Window measures the CPU work the whole machine does from Start to
// End, less this process's own: during a link-up, what both ends'
// processes and kernels spent to bring the link up.
type Window struct{ busy, total, self time.Duration }

// Start opens a window.
func Start() (Window, error) {
	busy, total, err := readMachine()
	if err != nil {
		return Window{}, err
	}
	self, err := readSelf()
	if err != nil {
		return Window{}, err
	}
	return Window{busy, total, self}, nil
}

// End returns the work done since Start, and its share of what the
// machine's CPUs could have done in the same time (1 is every CPU busy
// throughout). The machine counts in ticks of 10 ms.
func (w Window) End() (work time.Duration, share float64, err error) {
	e, err := Start()
	if err != nil {
		return 0, 0, err
	}
	work = max(0, (e.busy-w.busy)-(e.self-w.self))
	if all := e.total - w.total; all > 0 {
		share = min(1, float64(work)/float64(all))
	}
	return work, share, nil
}

// Settle waits, at most max, until the machine has been idle for a
// tenth of a second (its CPUs under a tenth busy, this process left out):
// so that what an earlier step left running (a link's teardown on both
// ends) is not counted in the next window. It reports whether it settled.
func Settle(max time.Duration) (bool, error) {
	deadline := time.Now().Add(max)
	for {
		w, err := Start()
		if err != nil {
			return false, err
		}
		time.Sleep(100 * time.Millisecond) // the interval measured, not a wait for an event
		_, share, err := w.End()
		if err != nil {
			return false, err
		}
		if share < 0.1 {
			return true, nil
		}
		if time.Now().After(deadline) {
			return false, nil
		}
	}
}
