package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Accounts on the lab's server: User and OtherUser may run pppd and the
// server half through sudo without a password, as the HOWTO's sudoers line
// allows (two clients of one server); PasswordUser needs one.
const (
	User         = "vpn"
	OtherUser    = "vpn2"
	PasswordUser = "vpnpw"
	ServerPPPD   = "/usr/sbin/pppd"
	// SetupUser is an account the lab does not create: sshd lets it in
	// once vpn-pppssh server-setup has made it (TestServerSetup).
	SetupUser = "vpnsetup"
)

// NoTunnelPort is a second port of the lab's sshd where PermitTunnel,
// AllowTcpForwarding and AllowStreamLocalForwarding are off; on port 22
// they are on, tunnels for root and for devices made for an account.
const NoTunnelPort = 2022

// PolicyFile is the server half's policy; /etc is an overlay inside the
// lab, so it never reaches the host.
const PolicyFile = "/etc/vpn-pppssh/server.conf"

// Policy is the lab server's policy, which allows what the lab's links
// ask for: their tunnel addresses, the network behind the client, and
// forwarding and masquerade for the network behind the server.
const Policy = `# vpn-pppssh lab server policy
ALLOW_PEERS=198.51.100.0/24
ALLOW_NETWORKS=198.18.0.0/15
ALLOW_FORWARDING=yes
ALLOW_MASQUERADE=yes
`

// WritePolicy replaces the server's policy file, root's and not writable
// by others, as the server half wants it.
func WritePolicy(body string) error {
	if err := os.MkdirAll(filepath.Dir(PolicyFile), 0o755); err != nil {
		return fmt.Errorf("writing the lab policy: %w", err)
	}
	tmp := PolicyFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		return fmt.Errorf("writing the lab policy: %w", err)
	}
	if err := os.Rename(tmp, PolicyFile); err != nil {
		return fmt.Errorf("writing the lab policy: %w", err)
	}
	return nil
}

// Lab is a prepared client and server; see the package documentation.
type Lab struct {
	Dir       string // lab files: keys, configs, logs
	Bin       string // the vpn-pppssh binary under test
	Identity  string // client's private key
	KnownHost string // known_hosts line for the server
	sshd      *exec.Cmd
	sshdDone  chan struct{}
}

// Setup builds the lab inside a fresh lab (see Run); dir is a scratch folder.
func Setup(dir, bin string) (*Lab, error) {
	if !Inside() {
		return nil, errors.New("lab.Setup changes accounts and namespaces: run it inside lab.Run")
	}
	l := &Lab{Dir: dir, Bin: bin, Identity: filepath.Join(dir, "id_ed25519")}
	if err := setupNetwork(); err != nil {
		return nil, err
	}
	if err := l.setupAccounts(); err != nil {
		return nil, err
	}
	if err := WritePolicy(Policy); err != nil {
		return nil, err
	}
	if err := l.startSSHD(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *Lab) setupAccounts() error {
	for _, u := range []string{User, OtherUser, PasswordUser} {
		if _, err := Sh("useradd", "-m", "-d", "/home/"+u, "-s", "/bin/sh", "-p", "*", u); err != nil {
			return err
		}
	}
	sudoers := fmt.Sprintf("# vpn-pppssh lab\n%s, %s ALL=(root) NOPASSWD: %s, %s serve\n%s ALL=(root) %s\nDefaults!%s !use_pty, !log_input, !log_output\n",
		User, OtherUser, ServerPPPD, l.Bin, PasswordUser, ServerPPPD, l.Bin)
	if err := os.WriteFile("/etc/sudoers.d/vpn-pppssh-lab", []byte(sudoers), 0o440); err != nil {
		return fmt.Errorf("writing sudoers: %w", err)
	}
	for _, k := range []string{"ssh_host_ed25519_key", "id_ed25519", "other_host_key"} {
		if _, err := Sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "vpn-pppssh-lab", "-f", filepath.Join(l.Dir, k)); err != nil {
			return err
		}
	}
	pub, err := os.ReadFile(l.Identity + ".pub")
	if err != nil {
		return err
	}
	// root logs in with the key too: OpenSSH's own tunnel forwarding
	// needs it (or a device made for the account).
	for _, u := range []string{User, OtherUser, PasswordUser, "root"} {
		if err := installKey(u, pub); err != nil {
			return err
		}
	}
	hk, err := os.ReadFile(filepath.Join(l.Dir, "ssh_host_ed25519_key.pub"))
	if err != nil {
		return err
	}
	l.KnownHost = ServerIP + " " + strings.TrimSpace(string(hk))
	other := fmt.Sprintf("[%s]:%d %s", ServerIP, NoTunnelPort, strings.TrimSpace(string(hk)))
	return os.WriteFile(l.KnownHosts(), []byte(l.KnownHost+"\n"+other+"\n"), 0o644)
}

// KnownHosts is a known_hosts file that has the server's key.
func (l *Lab) KnownHosts() string { return filepath.Join(l.Dir, "known_hosts") }

// OtherHostKeyLine is a known_hosts line giving the server a key it does not have.
func (l *Lab) OtherHostKeyLine() (string, error) {
	b, err := os.ReadFile(filepath.Join(l.Dir, "other_host_key.pub"))
	return ServerIP + " " + strings.TrimSpace(string(b)), err
}

// startSSHD runs a real OpenSSH sshd in the server namespace and returns
// once it says it is listening.
func (l *Lab) startSSHD() error {
	cmd, done, err := l.runSSHD("sshd", ServerNS, ServerIP, "ssh_host_ed25519_key")
	if err != nil {
		return err
	}
	l.sshd, l.sshdDone = cmd, done
	return nil
}

// InnerSSHD is a second sshd, on BehindServerIP: a server that the client
// reaches only through the lab's sshd as a jump host.
type InnerSSHD struct {
	cmd  *exec.Cmd
	done chan struct{}
	// KnownHost is its known_hosts line.
	KnownHost string
}

// StartInnerSSHD starts an sshd in BehindServerNS with the lab's accounts
// and keys and a host key of its own (other_host_key).
func (l *Lab) StartInnerSSHD() (*InnerSSHD, error) {
	return l.StartSSHDAt("inner-sshd", BehindServerNS, BehindServerIP, "other_host_key")
}

// StartSSHDAt starts another sshd named name (its files and log are
// name.*) in namespace ns on addr, with the lab's accounts and keys and
// the host key hostKey (ssh_host_ed25519_key: the lab server's own).
func (l *Lab) StartSSHDAt(name, ns, addr, hostKey string) (*InnerSSHD, error) {
	cmd, done, err := l.runSSHD(name, ns, addr, hostKey)
	if err != nil {
		return nil, err
	}
	hk, err := os.ReadFile(filepath.Join(l.Dir, hostKey+".pub"))
	if err != nil {
		cmd.Process.Kill()
		<-done
		return nil, err
	}
	return &InnerSSHD{cmd: cmd, done: done, KnownHost: addr + " " + strings.TrimSpace(string(hk))}, nil
}

// Stop ends the inner sshd (its pid, which this lab started) and its
// sessions (its children): a session whose client vanished with its path
// would otherwise keep sshd's stderr, and Stop waiting, for ever.
func (s *InnerSSHD) Stop() {
	listener := s.cmd.Process.Pid
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, _, _, err := statOf(pid); err == nil && ppid == listener {
			syscall.Kill(pid, syscall.SIGTERM)
		}
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

// runSSHD starts an sshd named name in namespace ns on addr:22 (and
// NoTunnelPort), logging to name.log, and waits until it listens.
func (l *Lab) runSSHD(name, ns, addr, hostKey string) (*exec.Cmd, chan struct{}, error) {
	conf := fmt.Sprintf(`# vpn-pppssh lab sshd
ListenAddress %s
Port 22
HostKey %s
PidFile %s
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers %s %s %s %s root
PermitTunnel yes
# TestManyLinks logs 64 clients in at once; the default, 10:30:100, drops
# unauthenticated connections from the 11th on.
MaxStartups 200
Port %d
LogLevel VERBOSE
Match LocalPort %d
	PermitTunnel no
	AllowTcpForwarding no
	AllowStreamLocalForwarding no
`, addr, filepath.Join(l.Dir, hostKey), filepath.Join(l.Dir, name+".pid"),
		User, OtherUser, PasswordUser, SetupUser, NoTunnelPort, NoTunnelPort)
	confPath := filepath.Join(l.Dir, name+"_config")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return nil, nil, err
	}
	cmd := exec.Command("ip", "netns", "exec", ns, "/usr/sbin/sshd", "-D", "-e", "-f", confPath)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, nil, err
	}
	logPath := filepath.Join(l.Dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, nil, fmt.Errorf("starting %s: %w", name, err)
	}
	done := make(chan struct{})
	listening := make(chan struct{})
	go func() {
		defer logf.Close()
		sc := bufio.NewScanner(stderr)
		said := false
		for sc.Scan() {
			fmt.Fprintln(logf, sc.Text())
			if !said && strings.Contains(sc.Text(), "Server listening on") {
				said = true
				close(listening)
			}
		}
		cmd.Wait()
		close(done)
	}()
	select {
	case <-listening:
		return cmd, done, nil
	case <-done:
		log, _ := os.ReadFile(logPath)
		return nil, nil, fmt.Errorf("%s exited at start: %s", name, log)
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		return nil, nil, fmt.Errorf("%s did not report listening within 20s", name)
	}
}

// Close stops sshd and removes the namespaces.
func (l *Lab) Close() {
	l.stopSSHD()
	teardownNetwork()
}

// stopSSHD ends the listening sshd, killing it if SIGTERM is not enough.
func (l *Lab) stopSSHD() {
	if l.sshd == nil {
		return
	}
	l.sshd.Process.Signal(syscall.SIGTERM)
	select {
	case <-l.sshdDone:
	case <-time.After(5 * time.Second):
		l.sshd.Process.Kill()
		<-l.sshdDone
	}
}

// Config writes a link configuration with the lab's defaults for a link
// from CLIENT .N to SERVER .N+1 of 198.51.100.0/24, then extra lines.
// A file that cannot be written panics: every caller is a test or the
// bench, which cannot go on without it.
func (l *Lab) Config(name string, n int, extra ...string) string {
	path, err := l.writeConfig(name, n, extra...)
	if err != nil {
		panic(err)
	}
	return path
}

func (l *Lab) writeConfig(name string, n int, extra ...string) (string, error) {
	lines := []string{
		"# written by the vpn-pppssh lab",
		"SERVER_HOSTNAME=" + ServerIP,
		"SERVER_USERNAME=" + User,
		"SSH_IDENTITY=" + l.Identity,
		"SSH_KNOWN_HOSTS=" + l.KnownHosts(),
	}
	if !slices.Contains(extra, "MODE=none") { // no tunnel, no addresses
		lines = append(lines, fmt.Sprintf("CLIENT_IFIPADDR=198.51.100.%d", n), fmt.Sprintf("SERVER_IFIPADDR=198.51.100.%d", n+1))
	}
	lines = append(lines, extra...)
	path := filepath.Join(l.Dir, name+".conf")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("writing the lab's link config: %w", err)
	}
	return path, nil
}

// Client runs vpn-pppssh in the client namespace and returns its output
// and exit code.
func (l *Lab) Client(ctx context.Context, args ...string) (string, int) {
	if os.Getenv("VPN_LAB_KEEP_LOG") == "true" {
		args = append([]string{"-v"}, args...) // vpn-lab --keep: debug logs
	}
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ClientNS, l.Bin}, args...)...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	default:
		return string(out) + err.Error(), -1
	}
}

// installKey puts pub in the account's ~/.ssh/authorized_keys with the
// ownership and modes sshd's StrictModes wants.
func installKey(name string, pub []byte) error {
	u, err := user.Lookup(name)
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	dir := filepath.Join(u.HomeDir, ".ssh")
	file := filepath.Join(dir, "authorized_keys")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(file, pub, 0o600); err != nil {
		return err
	}
	for _, p := range []string{dir, file} {
		if err := os.Chown(p, uid, gid); err != nil {
			return err
		}
	}
	return nil
}

// KillSessions kills sshd's session processes (not the listener) and what
// they run, as a server that lost its state would.
func (l *Lab) KillSessions() error {
	listener := 0
	if l.sshd != nil {
		listener = l.sshd.Process.Pid
	}
	for _, comm := range []string{"sshd", "sudo", "pppd", "vpn-pppssh"} {
		for _, p := range Processes(comm) {
			pid, args, _ := strings.Cut(p, " ")
			n, _ := strconv.Atoi(pid)
			if n == listener || n == os.Getpid() {
				continue
			}
			// Only the server's side: sshd sessions, and what runs on notty.
			if comm == "pppd" && !strings.Contains(args, " notty ") {
				continue
			}
			if comm == "vpn-pppssh" && !strings.Contains(args, " serve") {
				continue
			}
			syscall.Kill(n, syscall.SIGKILL)
		}
	}
	return nil
}

// StopSSHD stops the lab's sshd (its listener; sessions go on) until
// StartSSHD: a server that is not there yet.
func (l *Lab) StopSSHD() { l.stopSSHD() }

// StartSSHD starts the lab's sshd again after StopSSHD.
func (l *Lab) StartSSHD() error { return l.startSSHD() }

// RestartSSHD kills every sshd process of the lab, sessions included, and
// starts the listener again.
func (l *Lab) RestartSSHD() error {
	if err := l.KillSessions(); err != nil {
		return err
	}
	l.stopSSHD()
	return l.startSSHD()
}
