package cpuwork

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
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
	before       map[int]Stat
	benchCmds    time.Duration
	startedAfter int64 // ticks since boot at the start
}

// A Share is one program's part of a profile.
type Share struct {
	Name  string
	Procs int
	CPU   time.Duration
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
	cmds, err := rusage(unix.RUSAGE_CHILDREN)
	if err != nil {
		return nil, err
	}
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return nil, err
	}
	return &Profile{win: w, before: before, benchCmds: cmds,
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
		name := a.Comm
		if a.PPid == 2 || pid == 2 {
			name = "kernel threads"
		}
		var d time.Duration
		if b, ok := p.before[pid]; ok && b.Start == a.Start {
			d = a.Self - b.Self
		} else if a.Start >= p.startedAfter-1 {
			d = a.Self + a.Children
		}
		add(name, d)
		counted += max(d, 0)
	}
	cmds, err := rusage(unix.RUSAGE_CHILDREN)
	if err != nil {
		return nil, 0, err
	}
	cmds -= p.benchCmds
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

// readProcs reads /proc/<pid>/stat of every process; one that ends while
// being read is skipped.
func readProcs() (map[int]Stat, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	m := map[int]Stat{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := ReadStat(pid)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ESRCH) {
			continue
		}
		if err != nil {
			return nil, err
		}
		m[pid] = st
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("no process in /proc")
	}
	return m, nil
}

// Stat is what /proc/<pid>/stat says of a process's CPU (proc(5)).
type Stat struct {
	Comm     string
	PPid     int
	Start    int64         // ticks since boot
	Self     time.Duration // utime + stime
	Children time.Duration // cutime + cstime: the children it waited for
}

// ReadStat reads /proc/<pid>/stat.
func ReadStat(pid int) (Stat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Stat{}, err
	}
	st, err := parseStat(string(b))
	if err != nil {
		return Stat{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return st, nil
}

// parseStat reads the command between the first "(" and the last ")",
// then ppid (field 4), utime, stime, cutime, cstime (14-17) and starttime
// (22).
func parseStat(s string) (Stat, error) {
	open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || close < open || close+2 > len(s) {
		return Stat{}, fmt.Errorf("no command in %q", s)
	}
	f := strings.Fields(s[close+2:])
	if len(f) < 20 {
		return Stat{}, fmt.Errorf("%d fields after the command", len(f))
	}
	var n [6]int64
	for i, idx := range []int{1, 11, 12, 13, 14, 19} {
		v, err := strconv.ParseInt(f[idx], 10, 64)
		if err != nil {
			return Stat{}, fmt.Errorf("field %d: %w", idx+3, err)
		}
		n[i] = v
	}
	return Stat{Comm: s[open+1 : close], PPid: int(n[0]), Self: ticks(n[1] + n[2]), Children: ticks(n[3] + n[4]), Start: n[5]}, nil
}
