package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"
	"github.com/vpn-pppssh/vpn-pppssh/internal/version"
	"github.com/vpn-pppssh/vpn-pppssh/pppssh"
)

// printMan writes a manual page in roff: section 8, the command, from the
// same flags and text as --help; section 5, the configuration file, from
// the configuration keys themselves, so the pages cannot drift from the
// code. `make man` writes them; `make install` installs them.
func printMan(w io.Writer, section string, fs *pflag.FlagSet) error {
	switch section {
	case "8":
		man8(w, fs)
	case "5":
		man5(w)
	default:
		return usageError(fmt.Errorf("--print-man=%q: the pages are 8 (the command) and 5 (the configuration file)", section))
	}
	return nil
}

func manHead(w io.Writer, name, section, title string) {
	fmt.Fprintf(w, ".TH %s %s \"\" \"vpn-pppssh %s\" \"%s\"\n", strings.ToUpper(name), section, roffEscape(version.Release), title)
	fmt.Fprintf(w, ".SH NAME\n%s\n", roffEscape(name+" - "+map[string]string{
		"8": "a VPN of PPP (or tun/tap) over one SSH connection",
		"5": "link configuration of vpn-pppssh",
	}[section]))
}

func man8(w io.Writer, fs *pflag.FlagSet) {
	manHead(w, "vpn-pppssh", "8", "System Manager's Manual")
	fmt.Fprint(w, ".SH SYNOPSIS\n.B vpn-pppssh\n[\\fIflags\\fR] \\fBstart\\fR|\\fBstop\\fR|\\fBrestart\\fR|\\fBredial\\fR|\\fBstatus\\fR|\\fBconfig\\fR|\\fBcleanup\\fR\n.br\n.B vpn-pppssh serve\n.SH DESCRIPTION\n")
	para(w, "vpn-pppssh joins a local pppd (or a tun or tap device) to the SSH server's, over one SSH connection it makes itself, then applies routes, forwarding and masquerade and runs the ip-up and ip-down hooks. It keeps the link up: keepalives notice a dead path, and a dropped link is dialled again. Each link is configured in /etc/vpn-pppssh/NAME.conf; see vpn-pppssh.conf(5).")
	fmt.Fprint(w, ".SH COMMANDS\n")
	_, rest, _ := strings.Cut(usageHead, "commands:\n")
	cmds, codes, _ := strings.Cut(rest, "exit codes:\n")
	tagged(w, cmds)
	fmt.Fprint(w, ".SH OPTIONS\n")
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		tag := "\\-\\-" + roffEscape(f.Name)
		if f.Shorthand != "" {
			tag = "\\-" + roffEscape(f.Shorthand) + ", " + tag
		}
		if f.Value.Type() != "bool" {
			tag += " \\fI" + roffEscape(f.Value.Type()) + "\\fR"
		}
		fmt.Fprintf(w, ".TP\n.B %s\n%s\n", tag, roffEscape(f.Usage))
	})
	fmt.Fprint(w, ".SH \"EXIT STATUS\"\n")
	tagged(w, codes)
	fmt.Fprint(w, ".SH SIGNALS\n")
	fmt.Fprint(w, ".TP\n.B SIGTERM, SIGINT\ntake the link down, undo its changes and exit\n.TP\n.B SIGHUP\ntake the link down and dial again at once, even during a wait between redials\n")
	fmt.Fprint(w, ".SH FILES\n")
	for _, f := range [][2]string{
		{"/etc/vpn-pppssh/NAME.conf", "the configuration of link NAME"},
		{"/etc/vpn-pppssh/server.conf", "on the server: what clients of the server half may ask for"},
		{"/etc/default/vpn-pppssh", "links the init script and the ppp hooks handle"},
		{"/run/vpn-pppssh/NAME.pid, NAME.json, NAME.log", "the running link's lock, state and log"},
		{"/etc/ppp/ip-up.d/vpn-pppssh, /etc/ppp/ip-down.d/vpn-pppssh", "start and stop links with a dial-up uplink"},
		{"/run/vpn-pppssh-uplinks/IFACE", "the ppp hooks' record of an uplink that is up"},
	} {
		fmt.Fprintf(w, ".TP\n.I %s\n%s\n", roffEscape(f[0]), roffEscape(f[1]))
	}
	fmt.Fprint(w, ".SH \"SEE ALSO\"\n.BR vpn-pppssh.conf (5),\n.BR pppd (8),\n.BR ssh_config (5),\n.BR sudoers (5).\nThe HOWTO (/usr/share/doc/vpn-pppssh/HOWTO.md) is the admin's guide.\n")
}

func man5(w io.Writer) {
	manHead(w, "vpn-pppssh.conf", "5", "File Formats Manual")
	fmt.Fprint(w, ".SH SYNOPSIS\n/etc/vpn-pppssh/NAME.conf\n.SH DESCRIPTION\n")
	para(w, "Each file configures one link, named after the file. Lines are KEY=value; blank lines and lines starting with # are ignored; a value may be quoted with single or double quotes, and nothing in it is expanded: the file is read by vpn-pppssh, never by a shell. The last line for a key wins; an unknown key is an error that names the line. Files written for the HOWTO's vpn-pppssh script load as they are: SSH is ignored with a notice, and LOCAL_SSH_OPTS is read as the keys its options stand for (an option with no equivalent is an error that names it). The file must not be writable by others than root. Every key also has a command-line flag, the key in lower case with - for _ (SERVER_PORT is --server-port), which wins over the file.")
	para(w, "SERVER_HOSTNAME, SERVER_IFIPADDR and CLIENT_IFIPADDR are required (in ethernet mode a bridge may stand in for an address), and SERVER_USERNAME unless ~/.ssh/config gives a User for the host. `vpn-pppssh -n NAME config` prints the effective value of every key, then what start would resolve from ~/.ssh/config and known_hosts.")
	fmt.Fprint(w, ".SH KEYS\n")
	def := pppssh.Defaults()
	for _, k := range pppssh.Keys {
		fmt.Fprintf(w, ".TP\n.B %s\n%s", roffEscape(k.Name), roffEscape(k.Usage))
		if v := def.Get(k.Name); v != "" {
			fmt.Fprintf(w, " (default: %s)", roffEscape(v))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprint(w, ".SH EXAMPLE\n.nf\n")
	for _, l := range strings.Split(strings.TrimSpace(exampleConfig), "\n") {
		fmt.Fprintln(w, roffEscape(l))
	}
	fmt.Fprint(w, ".fi\n.SH \"SEE ALSO\"\n.BR vpn-pppssh (8),\n.BR ssh_config (5),\n.BR pppd (8).\n")
}

// exampleConfig is the example of vpn-pppssh.conf(5); the commented one
// that make install puts beside the HOWTO is scripts/vpn.conf.example.
const exampleConfig = `
# /etc/vpn-pppssh/office.conf: a link to the office's gateway
SERVER_HOSTNAME=gw.example.org
SERVER_USERNAME=vpn
SERVER_IFIPADDR=198.51.100.2
CLIENT_IFIPADDR=198.51.100.1
# the office LAN, reached through the link
SERVER_NETWORKS=203.0.113.0/24
`

// tagged writes lines of the form "  word  text" (continuations indented
// further) as .TP paragraphs.
func tagged(w io.Writer, text string) {
	for _, line := range strings.Split(text, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		if len(line) > 2 && line[2] != ' ' {
			word, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
			fmt.Fprintf(w, ".TP\n.B %s\n%s\n", roffEscape(word), roffEscape(strings.TrimSpace(rest)))
			continue
		}
		fmt.Fprintln(w, roffEscape(strings.TrimSpace(line)))
	}
}

func para(w io.Writer, text string) { fmt.Fprintf(w, ".PP\n%s\n", roffEscape(text)) }

// roffEscape makes text safe as roff text: a backslash is printed, not
// interpreted, a line cannot start a request, and '-' is a real minus (a
// man page's options are copied from it).
func roffEscape(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	var b strings.Builder
	for i, line := range strings.Split(s, "\n") {
		if i > 0 {
			b.WriteByte('\n')
		}
		if strings.HasPrefix(line, ".") || strings.HasPrefix(line, "'") {
			b.WriteString(`\&`)
		}
		b.WriteString(line)
	}
	return b.String()
}
