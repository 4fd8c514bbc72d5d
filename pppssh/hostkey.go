package pppssh

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/vpn-pppssh/vpn-pppssh/internal/rootfile"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// UnknownHostError: no known_hosts file has a key for the server.
type UnknownHostError struct {
	Host        string   // as looked up: host or [host]:port
	Files       []string // known_hosts files searched
	Fingerprint string   // SHA256 fingerprint of the key offered
	KeyType     string
}

func (e *UnknownHostError) Error() string {
	return fmt.Sprintf("host key verification failed: %s is not in %s (server offered %s %s); "+
		"check the fingerprint on the server (ssh-keygen -lf /etc/ssh/ssh_host_%s_key.pub) and add the key",
		e.Host, strings.Join(e.Files, " or "), e.KeyType, e.Fingerprint, keyFileType(e.KeyType))
}

// HostKeyChangedError: known_hosts has a different key for the server.
type HostKeyChangedError struct {
	Host        string
	Known       []string // file:line of each key on record
	Fingerprint string   // of the key offered
	KeyType     string
}

func (e *HostKeyChangedError) Error() string {
	return fmt.Sprintf("host key verification failed: the key of %s has CHANGED (server offered %s %s, known key at %s); "+
		"someone may be intercepting the connection, or the server was reinstalled: check, then fix the known_hosts line",
		e.Host, e.KeyType, e.Fingerprint, strings.Join(e.Known, ", "))
}

// hostKeys checks the server's key against known_hosts files. It also knows
// which key types are on record, so the client asks for one of those first
// and a host known by its ed25519 key is not refused for offering ECDSA.
type hostKeys struct {
	files    []string
	callback ssh.HostKeyCallback
}

func defaultKnownHosts(home string) []string {
	return []string{filepath.Join(home, ".ssh", "known_hosts"), "/etc/ssh/ssh_known_hosts"}
}

// loadHostKeys opens the given known_hosts file, or the default ones that
// exist. A missing explicit file is an error; so is finding none at all.
func loadHostKeys(explicit, home string) (*hostKeys, error) {
	var files []string
	if explicit != "" {
		if err := checkKnownHosts(explicit); err != nil {
			return nil, fmt.Errorf("SSH_KNOWN_HOSTS: %w", err)
		}
		files = []string{explicit}
	} else {
		for _, f := range defaultKnownHosts(home) {
			if err := checkKnownHosts(f); err == nil {
				files = append(files, f)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("known hosts: %w", err)
			}
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("host key verification impossible: no known_hosts file (looked for %s); "+
				"add the server's key to one, or set SSH_KNOWN_HOSTS", strings.Join(defaultKnownHosts(home), " and "))
		}
	}
	cb, err := knownhosts.New(files...)
	if err != nil {
		return nil, fmt.Errorf("reading known hosts: %w", err)
	}
	return &hostKeys{files: files, callback: cb}, nil
}

// checkKnownHosts refuses, when running as root, a known_hosts file that
// someone else could change (rootfile.CheckPath): whoever writes it decides
// which server root's key is shown to and whose traffic root routes.
func checkKnownHosts(path string) error {
	if err := rootfile.CheckPath(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return fmt.Errorf("refusing known_hosts file %s: %w", path, err)
	}
	if _, err := os.Stat(path); err != nil {
		return err
	}
	return nil
}

// check is the ssh.HostKeyCallback; its errors are typed.
func (h *hostKeys) check(hostname string, remote net.Addr, key ssh.PublicKey) error {
	if _, ok := remote.(proxyAddr); ok {
		// Through a proxy command there is no address, only the host
		// name, which knownhosts prefers anyway (as ssh does with a
		// ProxyCommand); it still parses the remote address it is given.
		remote = &net.TCPAddr{}
	}
	err := h.callback(hostname, remote, key)
	var ke *knownhosts.KeyError
	var re *knownhosts.RevokedError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ke) && len(ke.Want) == 0:
		return &UnknownHostError{Host: knownhosts.Normalize(hostname), Files: h.files,
			Fingerprint: ssh.FingerprintSHA256(key), KeyType: key.Type()}
	case errors.As(err, &ke):
		known := make([]string, len(ke.Want))
		for i, w := range ke.Want {
			known[i] = fmt.Sprintf("%s:%d", w.Filename, w.Line)
		}
		return &HostKeyChangedError{Host: knownhosts.Normalize(hostname), Known: known,
			Fingerprint: ssh.FingerprintSHA256(key), KeyType: key.Type()}
	case errors.As(err, &re):
		return fmt.Errorf("host key verification failed: %s offered a key revoked at %s:%d", hostname, re.Revoked.Filename, re.Revoked.Line)
	default:
		return fmt.Errorf("host key verification failed: %w", err)
	}
}

// algorithms lists the host key algorithms for the key types on record for
// addr, strongest first, or nil when none are (the server is then refused in
// check with a clear UnknownHostError).
func (h *hostKeys) algorithms(addr string) []string {
	// Asking about a throwaway key makes knownhosts list what it has.
	err := h.callback(addr, &net.TCPAddr{IP: net.IPv4zero}, probeKey)
	var ke *knownhosts.KeyError
	if !errors.As(err, &ke) {
		return nil
	}
	var algos []string
	seen := map[string]bool{}
	for _, w := range ke.Want {
		for _, a := range algorithmsForKeyType(w.Key.Type()) {
			if !seen[a] {
				seen[a] = true
				algos = append(algos, a)
			}
		}
	}
	return algos
}

func algorithmsForKeyType(t string) []string {
	switch t {
	case ssh.KeyAlgoRSA:
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	default:
		return []string{t}
	}
}

func keyFileType(t string) string {
	switch t {
	case ssh.KeyAlgoED25519:
		return "ed25519"
	case ssh.KeyAlgoRSA:
		return "rsa"
	default:
		if strings.HasPrefix(t, "ecdsa-") {
			return "ecdsa"
		}
		return "*"
	}
}

// probeKey is a fixed public key that is on no server.
var probeKey = func() ssh.PublicKey {
	k, err := ssh.NewPublicKey(ed25519.PublicKey(make([]byte, ed25519.PublicKeySize)))
	if err != nil {
		panic(err)
	}
	return k
}()
