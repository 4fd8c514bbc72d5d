package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Files the pinned-pppd tests add to the lab's server for the length of one
// test. /etc is an overlay inside the lab, so nothing reaches the host.
const (
	PeersDir   = "/etc/ppp/peers"
	SudoersDir = "/etc/sudoers.d"
)

// WritePeersFile writes /etc/ppp/peers/name (root-owned, 0644, as pppd's
// `call` wants it) and returns a function that removes it again.
func WritePeersFile(name, body string) (func() error, error) {
	if err := os.MkdirAll(PeersDir, 0o755); err != nil {
		return nil, fmt.Errorf("peers directory: %w", err)
	}
	p := filepath.Join(PeersDir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		return nil, fmt.Errorf("writing %s: %w", p, err)
	}
	return func() error { return os.Remove(p) }, nil
}

// AddSudoers installs a sudoers drop-in after checking it with visudo, and
// returns a function that removes it again. Drop-ins are read in name
// order and the last matching rule wins, so a name sorting after
// "vpn-pppssh-lab" overrides the lab's own rules.
func AddSudoers(name, body string) (func() error, error) {
	p := filepath.Join(SudoersDir, name)
	tmp := p + ".new" // sudo ignores names with a dot
	if err := os.WriteFile(tmp, []byte(body), 0o440); err != nil {
		return nil, fmt.Errorf("writing %s: %w", tmp, err)
	}
	if _, err := Sh("visudo", "-c", "-q", "-f", tmp); err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("sudoers drop-in %s: %w", name, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return nil, err
	}
	return func() error { return os.Remove(p) }, nil
}

// SSH runs command (one string, which the account's shell parses) on the
// lab's server as user, from the client namespace, with OpenSSH's own
// client, the lab's key and known_hosts: a hand-made session such as an
// account holder could open. It returns the combined output and the exit
// code (255 when ssh itself failed).
func (l *Lab) SSH(ctx context.Context, user, command string) (string, int, error) {
	return l.ssh(ctx, user, command, nil)
}

// SSHTerminal is SSH on a terminal (ssh -tt) with input as what is typed
// on it.
func (l *Lab) SSHTerminal(ctx context.Context, user, command, input string) (string, int, error) {
	return l.ssh(ctx, user, command, strings.NewReader(input), "-tt")
}

func (l *Lab) ssh(ctx context.Context, user, command string, stdin io.Reader, opts ...string) (string, int, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	args := append([]string{"netns", "exec", ClientNS, "ssh"}, opts...)
	cmd := exec.CommandContext(ctx, "ip", append(args,
		"-F", "none", "-i", l.Identity, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
		"-o", "UserKnownHostsFile="+l.KnownHosts(), "-o", "GlobalKnownHostsFile=none",
		"-o", "StrictHostKeyChecking=yes", user+"@"+ServerIP, command)...)
	cmd.Stdin = stdin
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0, nil
	case errors.As(err, &ee):
		return string(out), ee.ExitCode(), nil
	default:
		return string(out), -1, fmt.Errorf("ssh %s@%s: %w", user, ServerIP, err)
	}
}
