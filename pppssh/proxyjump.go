package pppssh

import (
	"errors"
	"fmt"
	"net/url"
	"os/user"
	"strings"
)

// maxJumps bounds a ProxyJump chain.
const maxJumps = 8

// hopSpec is one entry of a ProxyJump list: [user@]host[:port] or
// ssh://[user@]host[:port]. A host may be an alias of ~/.ssh/config.
type hopSpec struct {
	user string
	host string
	port int // 0: from ssh_config, else 22
}

// parseProxyJump reads a ProxyJump value (ssh_config(5)): hops separated
// by commas, first hop first; "none" is no jump.
func parseProxyJump(v string) ([]hopSpec, error) {
	v = strings.TrimSpace(v)
	if v == "" || strings.EqualFold(v, "none") {
		return nil, nil
	}
	parts := strings.Split(v, ",")
	if len(parts) > maxJumps {
		return nil, fmt.Errorf("%d jump hosts: at most %d", len(parts), maxJumps)
	}
	var hops []hopSpec
	for _, p := range parts {
		h, err := parseHop(strings.TrimSpace(p))
		if err != nil {
			return nil, err
		}
		hops = append(hops, h)
	}
	return hops, nil
}

func parseHop(s string) (hopSpec, error) {
	var h hopSpec
	if rest, ok := strings.CutPrefix(s, "ssh://"); ok {
		u, err := url.Parse("ssh://" + rest)
		if err != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" {
			return h, fmt.Errorf("jump host %q: not ssh://[user@]host[:port]", s)
		}
		h.host = u.Hostname()
		if u.User != nil {
			h.user = u.User.Username()
		}
		if p := u.Port(); p != "" {
			if err := setPort(&h.port, p); err != nil {
				return h, fmt.Errorf("jump host %q: %w", s, err)
			}
		}
	} else {
		if i := strings.LastIndex(s, "@"); i >= 0 {
			h.user, s = s[:i], s[i+1:]
		}
		h.host = s
		if strings.HasPrefix(s, "[") {
			// [v6]:port or [v6]
			end := strings.Index(s, "]")
			if end < 0 {
				return h, fmt.Errorf("jump host %q: unclosed [", s)
			}
			h.host = s[1:end]
			if rest := s[end+1:]; rest != "" {
				p, ok := strings.CutPrefix(rest, ":")
				if !ok {
					return h, fmt.Errorf("jump host %q: not [host]:port", s)
				}
				if err := setPort(&h.port, p); err != nil {
					return h, fmt.Errorf("jump host %q: %w", s, err)
				}
			}
		} else if host, p, ok := strings.Cut(s, ":"); ok && !strings.Contains(p, ":") {
			h.host = host
			if err := setPort(&h.port, p); err != nil {
				return h, fmt.Errorf("jump host %q: %w", s, err)
			}
		}
	}
	if h.user != "" && !validUser(h.user) {
		return h, fmt.Errorf("jump host %q: %q is not a user name", s, h.user)
	}
	if !validHost(h.host) {
		return h, fmt.Errorf("jump host %q: %q is not a host name, address or alias", s, h.host)
	}
	return h, nil
}

// String is the hop as ProxyJump writes it.
func (h hopSpec) String() string {
	s := h.host
	if strings.Contains(s, ":") {
		s = "[" + s + "]"
	}
	if h.user != "" {
		s = h.user + "@" + s
	}
	if h.port != 0 {
		s += fmt.Sprintf(":%d", h.port)
	}
	return s
}

// setProxyJump checks SSH_PROXY_JUMP when it is set.
func setProxyJump(dst *string, v string) error {
	if _, err := parseProxyJump(v); err != nil {
		return err
	}
	*dst = strings.TrimSpace(v)
	return nil
}

// setProxyCommand checks SSH_PROXY_COMMAND: one line, run by /bin/sh as
// OpenSSH runs ProxyCommand, with %h, %p, %r and %% expanded.
func setProxyCommand(dst *string, v string) error {
	if strings.ContainsAny(v, "\n\r\x00") {
		return errors.New("a proxy command is one line")
	}
	if _, err := expandProxyCommand(v, Target{Host: "h", Port: 22, User: "u"}); err != nil {
		return err
	}
	*dst = strings.TrimSpace(v)
	return nil
}

// expandProxyCommand replaces %h, %p, %r and %% as ssh_config(5) says for
// ProxyCommand; each value is quoted for the shell. Other % tokens are
// refused rather than passed on literally.
func expandProxyCommand(cmd string, t Target) (string, error) {
	var b strings.Builder
	for i := 0; i < len(cmd); i++ {
		c := cmd[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+1 == len(cmd) {
			return "", fmt.Errorf("proxy command %q ends in %%", cmd)
		}
		i++
		switch cmd[i] {
		case 'h':
			b.WriteString(ShellQuote(t.Host))
		case 'p':
			b.WriteString(fmt.Sprint(t.Port))
		case 'r':
			b.WriteString(ShellQuote(t.User))
		case 'n':
			b.WriteString(ShellQuote(t.Alias))
		case '%':
			b.WriteByte('%')
		default:
			return "", fmt.Errorf("proxy command %q: %%%c is not one of %%h, %%p, %%r, %%n or %%%%", cmd, cmd[i])
		}
	}
	return b.String(), nil
}

// localUser is the account a jump host is logged in to when neither the
// hop nor ssh_config names one, as ssh does.
func localUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "root"
}
