package pppssh

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// pppdProc is the local pppd, running on the slave side of a pty whose
// master this process holds.
type pppdProc struct {
	cmd    *exec.Cmd
	master *os.File // PPP frames to and from the session
	slave  *os.File // kept open so the master does not read EIO before pppd opens the slave
	watch  *pppdWatcher
	exited chan struct{}
	err    error    // from cmd.Wait, valid once exited is closed
	logr   *os.File // pppd's stdout and stderr, read by the log reader

	hangOnce sync.Once
	hangErr  error          // from closing the master, set once by hangup
	wg       sync.WaitGroup // the log reader and the waiter; release joins them
}

// startPPPD opens a pty and starts pppd on it.
func startPPPD(cfg Config, log *slog.Logger) (*pppdProc, error) {
	master, slave, err := openPTY()
	if err != nil {
		return nil, err
	}
	p := &pppdProc{master: master, slave: slave, watch: newPPPDWatcher(), exited: make(chan struct{})}
	p.watch.wantDNS = cfg.DNSPeer
	p.watch.want6 = cfg.CarriesIPv6()
	p.watch.renews = true
	cmd := exec.Command(cfg.PPPD, cfg.localPPPDArgs(slave.Name())...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	// A pipe of our own rather than cmd.StdoutPipe: a hook script that pppd
	// starts may keep the write end open after pppd has exited, and Wait
	// must not depend on it.
	logr, logw, err := os.Pipe()
	if err != nil {
		p.closePTY()
		return nil, fmt.Errorf("pppd log pipe: %w", err)
	}
	cmd.Stdout, cmd.Stderr = logw, logw
	p.logr = logr
	// Its own process group: a signal meant for us (Ctrl-C in the
	// foreground) reaches pppd only through stop, in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	err = cmd.Start()
	logw.Close()
	if err != nil {
		logr.Close()
		p.closePTY()
		return nil, fmt.Errorf("starting %s: %w", cfg.PPPD, err)
	}
	p.cmd = cmd
	plog := log.With("component", "pppd", "pid", cmd.Process.Pid)
	plog.Debug("started", "args", cmd.Args[1:])
	drained := make(chan struct{})
	p.wg.Add(2)
	go func() {
		// Returns at EOF, or when release closes the pipe (a hook script
		// that pppd started may hold its write end after pppd exited).
		defer p.wg.Done()
		defer close(drained)
		sc := bufio.NewScanner(logr)
		for sc.Scan() {
			// The watcher first: a log sink that stalls must not
			// delay what the link waits for.
			p.watch.line(sc.Text())
			plog.Info(sc.Text())
		}
	}()
	go func() {
		defer p.wg.Done()
		p.err = cmd.Wait()
		// pppd's last words explain its exit; give them a moment to arrive.
		select {
		case <-drained:
		case <-time.After(time.Second):
		}
		close(p.exited)
	}()
	return p, nil
}

func (p *pppdProc) exitReason() string {
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return fmt.Sprintf("killed by %v", ws.Signal())
		}
		return pppdExitReason(ee.ExitCode())
	}
	if p.err != nil {
		return p.err.Error()
	}
	return "exit status 0"
}

// stop asks pppd to end the link (SIGTERM: it sends LCP Terminate-Request
// and waits for the ack) and kills it if it has not exited within grace.
func (p *pppdProc) stop(grace time.Duration) error {
	if p.cmd == nil {
		return nil
	}
	select {
	case <-p.exited:
		return nil
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return nil
	case <-time.After(grace):
	}
	p.cmd.Process.Kill()
	<-p.exited
	// pppd takes SIGTERM as a request to end the link: it waits for the
	// peer's Terminate-Ack, then up to child-timeout (5 s) for its
	// ip-down scripts. Either can outlast grace.
	return fmt.Errorf("pppd (pid %d) had not ended %v after SIGTERM (perhaps awaiting the peer's Terminate-Ack or its ip-down scripts) and was killed", p.cmd.Process.Pid, grace)
}

// hangup closes the pty master: pppd sees the line drop. Every call
// returns the error of the one close, so that closePTY after an early
// hangup still reports it.
func (p *pppdProc) hangup() error {
	p.hangOnce.Do(func() { p.hangErr = p.master.Close() })
	return p.hangErr
}

// closePTY closes both ends of the pty.
func (p *pppdProc) closePTY() error {
	return errors.Join(p.hangup(), p.slave.Close())
}

// release closes the pty and pppd's log pipe and waits for the log reader
// and the waiter to return. pppd must have exited (stop) or never started.
func (p *pppdProc) release() error {
	err := p.closePTY()
	if p.logr != nil {
		p.logr.Close()
	}
	p.wg.Wait()
	return err
}
