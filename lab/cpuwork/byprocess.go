package cpuwork

import (
	"cmp"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// A Profile is a Window that also says which programs did the work: it
// reads every process's CPU time at its start and end.
//
// A process that started in the window counts in full, with the children
// it reaped (pppd's ip-up scripts count as pppd's). One that was there
// before counts with what it used meanwhile, not what it reaped: the
// listening sshd reaps the sessions of earlier links with their whole
// lives' time. The bench's own commands (ip netns exec, `vpn-pppssh
// start`) count as one row. What is left of the machine's work (processes
// that started and ended in the window under a parent that was there
// before) is the last row.
type Profile struct {
	win          Window
	before       map[int]proc
	benchCmds    time.Duration
	startedAfter int64 // ticks since boot at the start
}

// A Share is one program's part of a profile.
type Share struct {
	Name  string
	Procs int
	CPU   time.Duration
}

type proc struct {
	comm          string
	ppid          int
	start         int64 // ticks since boot
	own, children int64 // ticks
}

// StartProfile opens a window and reads the processes.
func StartProfile() (*Profile, error) {
	w, err := Start()
	if err != nil {
		return nil, err
	}
	before, err := readProcs()
	if err != nil {
		return nil, err
	}
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return nil, err
	}
	return &Profile{win: w, before: before, benchCmds: childrenCPU(),
		startedAfter: ts.Nano() / int64(10*time.Millisecond)}, nil
}

// End returns the shares, largest first, and the machine's work in the
// window (Window.End).
func (p *Profile) End() ([]Share, time.Duration, error) {
	work, _, err := p.win.End()
	if err != nil {
		return nil, 0, err
	}
	after, err := readProcs()
	if err != nil {
		return nil, 0, err
	}
	by := map[string]*Share{}
	add := func(name string, d time.Duration) {
		if d <= 0 {
			return
		}
		s := by[name]
		if s == nil {
			s = &Share{Name: name}
			by[name] = s
		}
		s.Procs++
		s.CPU += d
	}
	var counted time.Duration
	for pid, a := range after {
		if pid == os.Getpid() {
			continue // the bench itself: left out of the work
		}
		name := a.comm
		if a.ppid == 2 || pid == 2 {
			name = "kernel threads"
		}
		var d time.Duration
		if b, ok := p.before[pid]; ok && b.start == a.start {
			d = ticks(a.own - b.own)
		} else if a.start >= p.startedAfter-1 {
			d = ticks(a.own + a.children)
		}
		add(name, d)
		counted += max(d, 0)
	}
	cmds := childrenCPU() - p.benchCmds
	add("the bench's commands", cmds)
	counted += cmds
	add("other (ended in the window)", work-counted)
	shares := make([]Share, 0, len(by))
	for _, s := range by {
		shares = append(shares, *s)
	}
	slices.SortFunc(shares, func(a, b Share) int { return cmp.Compare(b.CPU, a.CPU) })
	return shares, work, nil
}

// childrenCPU is the CPU time of this process's reaped children.
func childrenCPU() time.Duration {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_CHILDREN, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// readProcs reads /proc/<pid>/stat of every process (proc(5)); one that
// ends while being read is skipped.
func readProcs() (map[int]proc, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	m := map[int]proc{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		p, err := parseProcStat(string(b))
		if err != nil {
			return nil, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		m[pid] = p
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("no process in /proc")
	}
	return m, nil
}

// parseProcStat reads the fields a profile needs: the command between the
// first "(" and the last ")", then ppid (4), utime, stime, cutime, cstime
// (14-17) and starttime (22).
func parseProcStat(s string) (proc, error) {
	open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || close < open || close+2 > len(s) {
		return proc{}, fmt.Errorf("no command in %q", s)
	}
	f := strings.Fields(s[close+2:])
	if len(f) < 20 {
		return proc{}, fmt.Errorf("%d fields after the command", len(f))
	}
	var n [6]int64
	for i, idx := range []int{1, 11, 12, 13, 14, 19} {
		v, err := strconv.ParseInt(f[idx], 10, 64)
		if err != nil {
			return proc{}, fmt.Errorf("field %d: %w", idx+3, err)
		}
		n[i] = v
	}
	return proc{comm: s[open+1 : close], ppid: int(n[0]), own: n[1] + n[2], children: n[3] + n[4], start: n[5]}, nil
}
