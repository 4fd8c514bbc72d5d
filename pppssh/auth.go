package pppssh

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"syscall"

	"github.com/vpn-pppssh/vpn-pppssh/internal/rootfile"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// defaultIdentities are tried, after the agent, when nothing names a key.
var defaultIdentities = []string{"id_ed25519", "id_ecdsa", "id_rsa"}

// signers collects the keys to offer: the named identity files alone when
// the configuration names them (ssh's IdentitiesOnly), otherwise the agent's
// keys and then ~/.ssh/id_*. It never prompts: a key protected by a
// passphrase must be in the agent. The returned closer releases the agent.
func signers(t Target, home string, log *slog.Logger) ([]ssh.Signer, func(), error) {
	if t.Explicit {
		var out []ssh.Signer
		for _, path := range t.Identities {
			s, err := readKey(path)
			if err != nil {
				return nil, func() {}, err
			}
			out = append(out, s)
		}
		return out, func() {}, nil
	}
	var out []ssh.Signer
	closer := func() {}
	if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
		conn, err := net.Dial("unix", sock)
		if err != nil {
			log.Warn("ssh-agent not reachable", "socket", sock, "err", err)
		} else {
			closer = func() { conn.Close() }
			agentSigners, err := agent.NewClient(conn).Signers()
			if err != nil {
				log.Warn("ssh-agent: listing keys", "err", err)
			}
			out = append(out, agentSigners...)
		}
	}
	for _, name := range defaultIdentities {
		path := filepath.Join(home, ".ssh", name)
		s, err := readKey(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			log.Warn("skipping key", "err", err)
			continue
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		closer()
		return nil, func() {}, fmt.Errorf("no SSH key to log in with: set SSH_IDENTITY, or load a key into ssh-agent, or create %s",
			filepath.Join(home, ".ssh", defaultIdentities[0]))
	}
	return out, closer, nil
}

// maxKeySize bounds what is read from a key file.
const maxKeySize = 1 << 20

// readKey reads a private key. As root, the key and the directories above
// it must be root's alone (rootfile.CheckPath); and, as OpenSSH has it, a
// key of this user that group or others can read is refused.
func readKey(path string) (ssh.Signer, error) {
	if err := rootfile.CheckPath(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("refusing SSH key %s: %w", path, err)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading SSH key: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading SSH key: %w", err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) == os.Getuid() && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("UNPROTECTED PRIVATE KEY FILE: SSH key %s can be read by group or others (mode %04o): chmod 600 it", path, fi.Mode().Perm())
	}
	pem, err := io.ReadAll(io.LimitReader(f, maxKeySize))
	if err != nil {
		return nil, fmt.Errorf("reading SSH key %s: %w", path, err)
	}
	s, err := ssh.ParsePrivateKey(pem)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		return nil, fmt.Errorf("SSH key %s is protected by a passphrase and nothing may prompt for it: add it to ssh-agent, or use a key without one", path)
	}
	if err != nil {
		return nil, fmt.Errorf("SSH key %s: %w", path, err)
	}
	return s, nil
}

// jumpSigners are the keys for each jump host: its IdentityFile entries
// from ssh_config alone, as for the server; else the agent's keys and
// ~/.ssh/id_*, as ssh would offer them, then the link's own SSH_IDENTITY
// (the admin's key for this VPN, offered only to a host whose key
// known_hosts confirmed). The closer releases every agent connection.
// linkKeys are the keys signers returned for t: read once, for both.
func jumpSigners(t Target, linkKeys []ssh.Signer, home string, log *slog.Logger) ([][]ssh.Signer, func(), error) {
	var all [][]ssh.Signer
	var closers []func()
	closeAll := func() {
		for _, c := range closers {
			c()
		}
	}
	if !t.Explicit {
		linkKeys = nil // the agent's and ~/.ssh's: signers(j) offers them already
	}
	for _, j := range t.Jumps {
		keys, closer, err := signers(j, home, log)
		if !j.Explicit {
			keys = append(keys, linkKeys...)
			if len(keys) > 0 {
				err = nil // no default key, but the link's
			}
		}
		if err != nil {
			closeAll()
			return nil, func() {}, fmt.Errorf("jump host %s: %w", j.Alias, err)
		}
		all, closers = append(all, keys), append(closers, closer)
	}
	return all, closeAll, nil
}
