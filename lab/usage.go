package lab

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/vpn-pppssh/vpn-pppssh/lab/cpuwork"
)

// ServerCPU is the CPU time spent so far by the server's side of any
// contender, whichever programs it uses: every process below the lab's sshd
// listener (sessions, sudo, pppd, serve, cat), alive or exited. A process's
// own time is its utime+stime; once it exits and its parent waits for it,
// the kernel adds that, with its own children's, to the parent's cutime and
// cstime. So the total is the listener's children's time plus, for each
// live process below it, its own and its children's: nothing counted twice,
// nothing lost when a session ends between two readings.
func (l *Lab) ServerCPU() (time.Duration, error) {
	root, below, err := l.belowSSHD()
	if err != nil {
		return 0, err
	}
	total := root.children
	for _, p := range below {
		total += p.self + p.children
	}
	return total, nil
}

// procStat is what statOf reads of a process.
type procStat struct {
	ppid           int
	self, children time.Duration
}

// belowSSHD reads every process's stat once and returns the lab's sshd
// listener and the processes below it, by pid.
func (l *Lab) belowSSHD() (procStat, map[int]procStat, error) {
	if l.sshd == nil || l.sshd.Process == nil {
		return procStat{}, nil, fmt.Errorf("no sshd listener to measure below")
	}
	root := l.sshd.Process.Pid
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return procStat{}, nil, err
	}
	procs := map[int]procStat{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ppid, self, children, err := statOf(pid)
		if err != nil {
			continue // gone since ReadDir
		}
		procs[pid] = procStat{ppid, self, children}
	}
	r, ok := procs[root]
	if !ok {
		return procStat{}, nil, fmt.Errorf("the sshd listener (pid %d) is gone", root)
	}
	below := map[int]procStat{}
	for pid, p := range procs {
		for a := p.ppid; a > 1; a = procs[a].ppid {
			if a == root {
				below[pid] = p
				break
			}
		}
	}
	return r, below, nil
}

// statOf reads a process's parent, its own CPU time and its waited-for
// children's from /proc/PID/stat.
func statOf(pid int) (ppid int, self, children time.Duration, err error) {
	st, err := cpuwork.ReadStat(pid)
	return st.PPid, st.Self, st.Children, err
}

// Memory is a process's resident set and its proportional share of it
// (shared pages divided among the processes that map them), in KiB.
func Memory(pid int) (rssKiB, pssKiB int, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "Rss:":
			rssKiB, err = strconv.Atoi(f[1])
		case "Pss:":
			pssKiB, err = strconv.Atoi(f[1])
		}
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/%d/smaps_rollup: %s: %w", pid, line, err)
		}
	}
	if rssKiB == 0 {
		return 0, 0, fmt.Errorf("/proc/%d/smaps_rollup: no Rss", pid)
	}
	return rssKiB, pssKiB, nil
}

// ServerMemory sums Memory over every process below the lab's sshd
// listener (the sessions and what they run) and counts them.
func (l *Lab) ServerMemory() (rssKiB, pssKiB, procs int, err error) {
	_, below, err := l.belowSSHD()
	if err != nil {
		return 0, 0, 0, err
	}
	for pid := range below {
		rss, pss, err := Memory(pid)
		if errors.Is(err, fs.ErrNotExist) {
			continue // gone since it was listed
		}
		if err != nil {
			return 0, 0, 0, err
		}
		rssKiB, pssKiB, procs = rssKiB+rss, pssKiB+pss, procs+1
	}
	return rssKiB, pssKiB, procs, nil
}
