package pppssh

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"github.com/vpn-pppssh/vpn-pppssh/internal/rootfile"
	"io"
	"os"
	"regexp"
	"strings"
)

// A ConfigError names the file, line and key of a bad setting.
type ConfigError struct {
	File string
	Line int
	Key  string // empty when the line is not a KEY=VALUE assignment
	Err  error
}

func (e *ConfigError) Error() string {
	where := fmt.Sprintf("%s:%d", e.File, e.Line)
	if e.Key != "" {
		return fmt.Sprintf("%s: %s: %v", where, e.Key, e.Err)
	}
	return fmt.Sprintf("%s: %v", where, e.Err)
}

func (e *ConfigError) Unwrap() error { return e.Err }

// ErrShellSyntax marks a value that would need a shell to mean anything.
// Files are parsed, never sourced, so such a value is refused rather than
// taken literally.
var ErrShellSyntax = errors.New("shell syntax is not supported: the file is parsed, not run by a shell")

// maxConfigSize bounds what is read from a configuration file.
const maxConfigSize = 1 << 20

// LoadFile reads a configuration file into c. Files written for the HOWTO's
// vpn-pppssh script work unchanged: KEY=VALUE lines, comments, single or
// double quotes. Notices about accepted-but-ignored keys are returned.
func (c *Config) LoadFile(path string) (notices []string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading configuration: %w", err)
	}
	defer f.Close()
	if err := checkOwnership(f, path); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading configuration %s: %w", path, err)
	}
	if len(data) > maxConfigSize {
		return nil, fmt.Errorf("configuration %s is larger than %d bytes", path, maxConfigSize)
	}
	return c.Parse(path, data)
}

// checkOwnership refuses, when running as root, a file that others may
// write: whoever can write it chooses which program runs as root.
func checkOwnership(f *os.File, path string) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	if err := rootfile.Check(fi); err != nil {
		return fmt.Errorf("%s is %w", path, err)
	}
	return nil
}

var assignRE = regexp.MustCompile(`^(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$`)

// Parse applies the KEY=VALUE lines in data; name is used in errors only.
func (c *Config) Parse(name string, data []byte) (notices []string, err error) {
	var sshOpts string
	var sshOptsLine int
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxConfigSize)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		m := assignRE.FindStringSubmatch(line)
		if m == nil {
			return nil, &ConfigError{File: name, Line: n, Err: fmt.Errorf("not a KEY=VALUE line: %q", clip(line))}
		}
		key := m[1]
		value, err := unquote(m[2])
		if err != nil {
			return nil, &ConfigError{File: name, Line: n, Key: key, Err: err}
		}
		if key == "LOCAL_SSH_OPTS" {
			sshOpts, sshOptsLine = value, n
			continue
		}
		if why, ok := legacyKeys[key]; ok {
			notices = append(notices, fmt.Sprintf("%s:%d: %s ignored: %s", name, n, key, why))
			continue
		}
		if _, ok := KeyByName(key); !ok {
			return nil, &ConfigError{File: name, Line: n, Key: key, Err: unknownKey(key)}
		}
		if err := c.Set(key, value); err != nil {
			return nil, &ConfigError{File: name, Line: n, Key: key, Err: err}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if sshOptsLine > 0 {
		n, err := c.applySSHOpts(name, sshOptsLine, sshOpts)
		if err != nil {
			return nil, err
		}
		notices = append(notices, n...)
	}
	return notices, nil
}

// applySSHOpts sets the keys that LOCAL_SSH_OPTS, from the HOWTO's script,
// stands for. A key the file also sets must agree with it; the notice
// says what each option became, so the admin can write the keys instead.
func (c *Config) applySSHOpts(file string, line int, v string) ([]string, error) {
	keys, err := translateSSHOpts(v)
	if err != nil {
		return nil, &ConfigError{File: file, Line: line, Key: "LOCAL_SSH_OPTS", Err: err}
	}
	var notices, done []string
	for _, k := range Keys { // in the order config prints them
		val, ok := keys[k.Name]
		if !ok {
			continue
		}
		if c.Explicit(k.Name) {
			if have := c.Get(k.Name); have != val {
				return nil, &ConfigError{File: file, Line: line, Key: "LOCAL_SSH_OPTS",
					Err: fmt.Errorf("says %s=%s, but the file also sets %s=%s: keep one", k.Name, val, k.Name, have)}
			}
			continue
		}
		if err := c.Set(k.Name, val); err != nil {
			return nil, &ConfigError{File: file, Line: line, Key: "LOCAL_SSH_OPTS", Err: fmt.Errorf("%s: %w", k.Name, err)}
		}
		done = append(done, k.Name+"="+val)
	}
	if len(done) > 0 {
		notices = append(notices, fmt.Sprintf("%s:%d: LOCAL_SSH_OPTS read as %s (write these keys instead)", file, line, strings.Join(done, " ")))
	}
	return notices, nil
}

// unquote takes a value as the shell would see it in VAR=value, for the
// subset that means the same with or without a shell: one word, optionally
// in single or double quotes, optionally followed by a comment. Anything a
// shell would expand or interpret is refused with ErrShellSyntax.
func unquote(s string) (string, error) {
	var value, rest string
	switch {
	case strings.HasPrefix(s, "'"):
		end := strings.IndexByte(s[1:], '\'')
		if end < 0 {
			return "", errors.New("unterminated single quote")
		}
		value, rest = s[1:1+end], s[2+end:]
	case strings.HasPrefix(s, `"`):
		end := strings.IndexByte(s[1:], '"')
		if end < 0 {
			return "", errors.New("unterminated double quote")
		}
		value, rest = s[1:1+end], s[2+end:]
		if strings.ContainsAny(value, "$`\\") {
			return "", fmt.Errorf("%w (found %q)", ErrShellSyntax, clip(value))
		}
	default:
		value, rest = s, ""
		if i := strings.IndexAny(s, " \t"); i >= 0 {
			value, rest = s[:i], s[i:]
		}
		if strings.ContainsAny(value, "$`\\;&|<>(){}[]*?~!\"'#") {
			return "", fmt.Errorf("%w (found %q)", ErrShellSyntax, clip(value))
		}
	}
	rest = strings.TrimLeft(rest, " \t")
	if rest != "" && rest[0] != '#' {
		return "", fmt.Errorf("%w: more than one word (%q); quote the value", ErrShellSyntax, clip(s))
	}
	if strings.ContainsAny(value, "\x00\r\n") || strings.ContainsFunc(value, isControl) {
		return "", errors.New("control character in value")
	}
	return value, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// unknownKey is the error for a key that does not exist, with the key
// that was most likely meant: one within two edits (SERVER_HOSTNMAE), or
// the same key in another case (server_hostname).
func unknownKey(key string) error {
	best, bestD := "", 3
	for _, k := range Keys {
		if strings.EqualFold(k.Name, key) {
			best = k.Name
			break
		}
		if d := editDistance(k.Name, key); d < bestD {
			best, bestD = k.Name, d
		}
	}
	if best == "" {
		return errors.New("unknown key")
	}
	return fmt.Errorf("unknown key (did you mean %s?)", best)
}

// editDistance is the Levenshtein distance of two short ASCII strings.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
