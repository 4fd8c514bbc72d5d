package lab

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// RawServe is a session that runs the server half (`sudo -n BIN serve`)
// through the real sshd and sudo, started with OpenSSH's ssh client from
// the client namespace, so that a test can send it what no vpn-pppssh
// client would: a hand-made request, or nothing at all.
type RawServe struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string // stdout lines
	stderr *lockedBuffer
	done   chan struct{}
	err    error // of cmd.Wait, once done is closed
	once   sync.Once
}

// DialServe starts a session of the server half as user.
func (l *Lab) DialServe(ctx context.Context, user string) (*RawServe, error) {
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ClientNS, "ssh", "-F", "/dev/null",
		"-i", l.Identity, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
		"-o", "UserKnownHostsFile="+l.KnownHosts(), "-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "StrictHostKeyChecking=yes", "-T", user+"@"+ServerIP,
		"sudo", "-n", l.Bin, "serve")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	r := &RawServe{cmd: cmd, stdin: stdin, lines: make(chan string, 16), stderr: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stderr = r.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting ssh: %w", err)
	}
	go func() {
		// Only the answer line matters; after it comes PPP, read and
		// dropped so the server is never blocked on a full pipe.
		br := bufio.NewReader(stdout)
		if line, err := br.ReadString('\n'); err == nil {
			r.lines <- strings.TrimSuffix(line, "\n")
		}
		io.Copy(io.Discard, br)
		close(r.lines)
		r.err = cmd.Wait()
		close(r.done)
	}()
	return r, nil
}

// Send writes one line to the server half.
func (r *RawServe) Send(line string) error {
	_, err := io.WriteString(r.stdin, line+"\n")
	return err
}

// Answer waits up to timeout for the server half's answer line.
func (r *RawServe) Answer(timeout time.Duration) (string, error) {
	select {
	case line, ok := <-r.lines:
		if !ok {
			<-r.done
			return "", fmt.Errorf("the session ended without an answer (%v): %s", r.err, r.stderr.String())
		}
		return line, nil
	case <-time.After(timeout):
		return "", fmt.Errorf("no answer within %v; stderr so far: %s", timeout, r.stderr.String())
	}
}

// Ended waits up to timeout for the session to end by itself.
func (r *RawServe) Ended(timeout time.Duration) bool {
	select {
	case <-r.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// Stderr is what the session wrote on stderr so far.
func (r *RawServe) Stderr() string { return r.stderr.String() }

// Close closes the session's stdin (the server's pppd sees a hangup) and
// waits for it to end, killing ssh after 10 s. It may be called twice.
func (r *RawServe) Close() error {
	r.once.Do(func() {
		r.stdin.Close()
		if !r.Ended(10 * time.Second) {
			r.cmd.Process.Kill()
			<-r.done
		}
	})
	var ee *exec.ExitError
	if errors.As(r.err, &ee) {
		return nil // the server's refusals end the session with a status
	}
	return r.err
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
