package pppssh

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// cmdConn is a connection through a proxy command: its standard input and
// output, as ssh's ProxyCommand. The command runs in a process group of
// its own, which Close kills and waits for.
type cmdConn struct {
	r, w   *os.File // our ends: the command's stdout and stdin
	cmd    *exec.Cmd
	stderr *tailWriter
	desc   string

	closeOnce sync.Once
}

// proxyAddr is the address a proxy command's connection reports: there is
// no TCP peer this host could route to.
type proxyAddr string

func (a proxyAddr) Network() string { return "proxy-command" }
func (a proxyAddr) String() string  { return string(a) }

// startProxyCommand runs the expanded command with /bin/sh -c, as ssh
// does, with "exec" so that the shell does not stay between.
func startProxyCommand(command string, t Target, log *slog.Logger) (*cmdConn, error) {
	expanded, err := expandProxyCommand(command, t)
	if err != nil {
		return nil, err
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	c := &cmdConn{r: outR, w: inW, stderr: newTailWriter(log.With("proxy_command", command)), desc: command}
	c.cmd = exec.Command("/bin/sh", "-c", "exec "+expanded)
	c.cmd.Stdin, c.cmd.Stdout, c.cmd.Stderr = inR, outW, c.stderr
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A descendant that left the group and keeps stderr open must not
	// hold Close: Wait gives up on the copy after this.
	c.cmd.WaitDelay = 2 * time.Second
	err = c.cmd.Start()
	inR.Close()
	outW.Close()
	if err != nil {
		outR.Close()
		inW.Close()
		return nil, fmt.Errorf("proxy command %q: %w", command, err)
	}
	return c, nil
}

func (c *cmdConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *cmdConn) Write(p []byte) (int, error) { return c.w.Write(p) }

// Close ends the command: its stdin closed, then its process group
// killed, then waited for.
func (c *cmdConn) Close() error {
	c.closeOnce.Do(func() {
		c.w.Close()
		c.r.Close()
		syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		c.cmd.Wait()
	})
	return nil
}

// said is the end of what the command wrote on stderr, escaped, for
// errors; each line of it was logged as it came.
func (c *cmdConn) said() string { return strings.TrimSpace(c.stderr.String()) }

func (c *cmdConn) LocalAddr() net.Addr  { return proxyAddr("local") }
func (c *cmdConn) RemoteAddr() net.Addr { return proxyAddr("proxy command " + c.desc) }

func (c *cmdConn) SetDeadline(t time.Time) error {
	if err := c.r.SetReadDeadline(t); err != nil {
		return err
	}
	return c.w.SetWriteDeadline(t)
}
func (c *cmdConn) SetReadDeadline(t time.Time) error  { return c.r.SetReadDeadline(t) }
func (c *cmdConn) SetWriteDeadline(t time.Time) error { return c.w.SetWriteDeadline(t) }
