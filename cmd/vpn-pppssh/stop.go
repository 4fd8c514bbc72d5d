package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vpn-pppssh/vpn-pppssh/dnsconf"
	"github.com/vpn-pppssh/vpn-pppssh/internal/rundir"
	"github.com/vpn-pppssh/vpn-pppssh/pppssh"
	"github.com/vpn-pppssh/vpn-pppssh/routing"
	"golang.org/x/sys/unix"
)

// stopGrace is how long the owner has to take the link down in order
// before it is killed. Its carrier's close is bounded by 6 s
// (pppssh's carrierCloseWait; a PPP carrier's own steps by 3 s and 2 s).
const stopGrace = 8 * time.Second

// stop ends a running link. Not running is success, as LSB asks.
func stop(o *options, cfg pppssh.Config) error {
	pid, err := o.runDir.Owner(cfg.Name)
	if err != nil {
		return err
	}
	if pid == 0 {
		if err := cleanupStale(o, cfg.Name, false); err != nil {
			return err
		}
		fmt.Fprintf(o.stdout, "vpn-pppssh: link %s is not running\n", cfg.Name)
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signalling pid %d: %w", pid, err)
	}
	if !o.runDir.WaitReleased(cfg.Name, stopGrace) {
		syscall.Kill(pid, syscall.SIGKILL)
		waitGone(pid, 2*time.Second)
		if err := cleanupStale(o, cfg.Name, false); err != nil {
			return err
		}
		fmt.Fprintf(o.stdout, "vpn-pppssh: link %s killed after %v\n", cfg.Name, stopGrace)
		return nil
	}
	waitGone(pid, 2*time.Second)
	// The owner may have died rather than stopped (a kill -9 that was
	// still on its way when we looked): what it left is removed now.
	if err := cleanupStale(o, cfg.Name, false); err != nil {
		return err
	}
	fmt.Fprintf(o.stdout, "vpn-pppssh: link %s stopped\n", cfg.Name)
	return nil
}

// cleanupStale removes what a dead owner left: its state file and a pppd
// still running for this link. It does nothing while an owner is alive.
func cleanupStale(o *options, name string, report bool) error {
	// Holding the lock proves the owner is dead and keeps a new one out
	// while we clean; releasing it removes the lock file as well.
	lock, err := o.runDir.Lock(name)
	if errors.Is(err, rundir.ErrRunning) {
		if report {
			fmt.Fprintf(o.stdout, "vpn-pppssh: %v; nothing to clean up\n", err)
		}
		return nil
	}
	if err != nil {
		return err
	}
	defer lock.Release()
	return removeLeftovers(o, name, report)
}

// removeLeftovers is cleanupStale for a caller that holds the link's lock.
func removeLeftovers(o *options, name string, report bool) error {
	var found []string
	st, err := o.runDir.Read(name)
	if err == nil {
		found = append(found, "state file")
	}
	linkname := "vpn-pppssh-" + name
	var carrierPid int
	if st.Mode == pppssh.ModePPP || st.Mode == "" {
		carrierPid = st.CarrierPid // a pppd; isOurPPPD checks that it still is
	}
	for _, pid := range []int{carrierPid, pppdPidFromFile(linkname)} {
		if pid > 0 && isOurPPPD(pid, linkname) {
			found = append(found, fmt.Sprintf("pppd pid %d", pid))
			syscall.Kill(pid, syscall.SIGTERM)
			if !waitGone(pid, 3*time.Second) {
				syscall.Kill(pid, syscall.SIGKILL)
				waitGone(pid, 2*time.Second)
			}
		}
	}
	// Undo goes on past a failure: the routes below (an unreachable ::/1
	// outlives the interface) must not wait for a stuck resolvconf.
	var dnsErr error
	if dnsconf.Leftovers(string(o.runDir), name) {
		if err := dnsconf.Cleanup(string(o.runDir), name); err != nil && !errors.Is(err, dnsconf.ErrChanged) {
			dnsErr = fmt.Errorf("undoing the DNS settings of a dead process: %w", err)
		} else {
			found = append(found, "DNS settings")
		}
	}
	if routing.Leftovers(string(o.runDir), name) {
		r, err := routing.New(name, string(o.runDir))
		if err == nil {
			err = r.Close()
		}
		if err != nil {
			return errors.Join(dnsErr, fmt.Errorf("undoing the routes and rules of a dead process: %w", err))
		}
		found = append(found, "routes and rules")
	}
	if dnsErr != nil {
		return dnsErr // its state file stays, for the next try
	}
	if report {
		// The explicit cleanup also finds rules whose journal is gone
		// (a lost /run), by the link's name on them.
		n, err := routing.RemoveFirewallRules(string(o.runDir), name)
		if err != nil {
			return fmt.Errorf("removing firewall rules of link %s: %w", name, err)
		}
		if n > 0 {
			found = append(found, fmt.Sprintf("%d firewall rules", n))
		}
	}
	if err := o.runDir.Remove(name); err != nil {
		return fmt.Errorf("removing stale state: %w", err)
	}
	if len(found) > 0 {
		fmt.Fprintf(o.stderr, "vpn-pppssh: link %s: removed leftovers of a process that died: %s\n", name, strings.Join(found, ", "))
	} else if report {
		fmt.Fprintf(o.stdout, "vpn-pppssh: link %s: nothing to clean up\n", name)
	}
	return nil
}

// pppdPidFromFile reads the pid file pppd writes for its linkname (pppd(8),
// FILES: /var/run/ppp-name.pid).
func pppdPidFromFile(linkname string) int {
	for _, dir := range []string{"/run", "/var/run"} {
		b, err := os.ReadFile(filepath.Join(dir, "ppp-"+linkname+".pid"))
		if err != nil {
			continue
		}
		first, _, _ := strings.Cut(string(b), "\n")
		if pid, err := strconv.Atoi(strings.TrimSpace(first)); err == nil {
			return pid
		}
	}
	return 0
}

// isOurPPPD checks that pid is a pppd started for linkname, so that a
// reused pid is never signalled.
func isOurPPPD(pid int, linkname string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	if len(args) == 0 || filepath.Base(args[0]) != "pppd" {
		return false
	}
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "linkname" && args[i+1] == linkname {
			return true
		}
	}
	return false
}

// waitGone waits until pid has exited, through a pidfd, and reports
// whether it did within timeout.
func waitGone(pid int, timeout time.Duration) bool {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return errors.Is(err, unix.ESRCH)
	}
	defer unix.Close(fd)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		n, err := unix.Poll(fds, int(left.Milliseconds())+1)
		if err == nil && n > 0 {
			return true
		}
		if err != nil && !errors.Is(err, unix.EINTR) {
			return false
		}
	}
}
