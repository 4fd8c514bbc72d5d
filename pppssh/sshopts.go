package pppssh

import (
	"fmt"
	"strings"
)

// translateSSHOpts turns LOCAL_SSH_OPTS of the HOWTO's script (options
// the script passed to ssh, split at white space as its shell split them)
// into this tool's keys: the options that choose where, as whom and how
// to log in become keys, options that cannot change anything here are
// accepted, and every other option is refused by name, so that a migrated
// link never quietly uses another port, key or path than the script did.
func translateSSHOpts(v string) (map[string]string, error) {
	words := strings.Fields(v)
	out := map[string]string{}
	set := func(key, val, opt string) error {
		if old, ok := out[key]; ok && old != val {
			return fmt.Errorf("%s gives %s=%s, and an earlier option %s", opt, key, val, old)
		}
		out[key] = val
		return nil
	}
	for i := 0; i < len(words); i++ {
		w := words[i]
		if !strings.HasPrefix(w, "-") || len(w) < 2 {
			return nil, fmt.Errorf("%q is not an ssh option", w)
		}
		flag, arg := w[:2], w[2:]
		needArg := strings.ContainsRune("pilJocLRD", rune(flag[1]))
		if needArg && arg == "" {
			if i+1 == len(words) {
				return nil, fmt.Errorf("%s needs a value", flag)
			}
			i++
			arg = words[i]
		}
		var err error
		switch flag {
		case "-p":
			err = set("SERVER_PORT", arg, "-p "+arg)
		case "-i":
			err = set("SSH_IDENTITY", arg, "-i "+arg)
		case "-l":
			err = set("SERVER_USERNAME", arg, "-l "+arg)
		case "-J":
			err = set("SSH_PROXY_JUMP", arg, "-J "+arg)
		case "-L", "-R", "-D":
			// Forwards add up, as several -L do for ssh.
			key := map[string]string{"-L": "LOCAL_FORWARDS", "-R": "REMOTE_FORWARDS", "-D": "DYNAMIC_FORWARDS"}[flag]
			out[key] = strings.TrimSpace(out[key] + " " + arg)
		case "-o":
			err = translateOption(arg, set)
		default:
			// Flags without a value: a run of them may share one dash.
			for _, f := range w[1:] {
				switch f {
				case 'P', 'q', 'v', 'T', 'n', 'x', 'a', 'k':
					// -P (an unprivileged source port) is what the
					// built-in client always does; -q, -v, -T, -n,
					// -x, -a, -k change nothing for a link.
				default:
					return nil, fmt.Errorf("ssh option -%c has no equivalent here (set the keys of vpn-pppssh.conf(5) instead)", f)
				}
			}
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// translateOption is one -o Key=Value (the script's shell split the
// value at white space, so "-o Key Value" never reached ssh as one).
func translateOption(o string, set func(key, val, opt string) error) error {
	name, val, ok := strings.Cut(o, "=")
	if !ok {
		return fmt.Errorf("-o %s: want -o Option=value", o)
	}
	name = strings.TrimSpace(name)
	opt := "-o " + o
	switch strings.ToLower(name) {
	case "port":
		return set("SERVER_PORT", val, opt)
	case "user":
		return set("SERVER_USERNAME", val, opt)
	case "identityfile":
		return set("SSH_IDENTITY", val, opt)
	case "proxyjump":
		return set("SSH_PROXY_JUMP", val, opt)
	case "proxycommand":
		return set("SSH_PROXY_COMMAND", val, opt)
	case "userknownhostsfile":
		return set("SSH_KNOWN_HOSTS", val, opt)
	case "serveraliveinterval":
		return set("KEEPALIVE", val, opt)
	case "connecttimeout":
		return set("CONNECT_TIMEOUT", val, opt)
	case "batchmode", "identitiesonly", "serveralivecountmax", "tcpkeepalive", "loglevel":
		return nil // always batch, only the named keys, 3 keepalives, logs of its own
	case "stricthostkeychecking":
		if strings.EqualFold(val, "yes") {
			return nil
		}
		return fmt.Errorf("%s: vpn-pppssh never accepts an unknown or changed host key; add the key to known_hosts", opt)
	}
	return fmt.Errorf("%s has no equivalent here (set the keys of vpn-pppssh.conf(5) instead)", opt)
}
