package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/vpn-pppssh/vpn-pppssh/internal/safetext"
	"github.com/vpn-pppssh/vpn-pppssh/pppssh"
	"github.com/vpn-pppssh/vpn-pppssh/setup"
)

// serverSetup is `vpn-pppssh server-setup [--apply] ...`: the HOWTO's
// section 4 for clients of the server half, printed, and with --apply
// carried out. Its flags are its own, not the link keys.
func serverSetup(o *options, args []string) error {
	fs := pflag.NewFlagSet("server-setup", pflag.ContinueOnError)
	fs.SortFlags = false
	fs.SetOutput(o.stderr)
	apply := fs.Bool("apply", false, "make the changes (without it: only say what they would be)")
	account := fs.String("account", "vpn", "the unprivileged account clients log in as")
	keyFile := fs.String("key", "", "the client's public key file (its .pub), pinned to the server half in authorized_keys")
	self, _ := os.Executable()
	helper := fs.String("helper", self, "this program's path on this server, as clients' SERVER_HELPER names it")
	peers := fs.String("peers", "", "for a new "+pppssh.PolicyPath+": ALLOW_PEERS, the range of tunnel addresses clients may use (e.g. 198.51.100.0/24)")
	fs.Usage = func() {
		fmt.Fprintf(o.stdout, "usage: vpn-pppssh server-setup [--apply] --key CLIENT.pub [--account vpn] [--helper PATH] [--peers CIDR,...]\n\n"+
			"Prepares this server for clients with SERVER_HELPER (HOWTO section 4): the account, its\n"+
			"authorized_keys line pinned to the server half, a sudoers drop-in checked with visudo -c,\n"+
			"a starting policy, and a look at pppd and tun. Without --apply it changes nothing.\n"+
			"Run twice, the second run changes nothing. Exit 1 when something is missing.\n\n%s", fs.FlagUsages())
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
		return usageError(fmt.Errorf("server-setup: %w", err))
	}
	if fs.NArg() != 0 || *keyFile == "" {
		return usageError(errors.New("server-setup: --key CLIENT.pub is required, and nothing else is an argument (vpn-pppssh server-setup --help)"))
	}
	key, err := os.ReadFile(*keyFile)
	if err != nil {
		return usageError(fmt.Errorf("server-setup: --key: %w", err))
	}
	c := setup.Config{Account: *account, Helper: *helper, Key: key, PolicyPath: pppssh.PolicyPath,
		SudoersDir: "/etc/sudoers.d", PPPD: "/usr/sbin/pppd"}
	for _, p := range strings.FieldsFunc(*peers, func(r rune) bool { return r == ',' || r == ' ' }) {
		pfx, err := netip.ParsePrefix(p)
		if err != nil || pfx != pfx.Masked() || !pfx.Addr().Is4() {
			return usageError(fmt.Errorf("server-setup: --peers %q: want IPv4 networks such as 198.51.100.0/24", p))
		}
		c.Peers = append(c.Peers, pfx)
	}
	steps, err := setup.Plan(c)
	if err != nil {
		return usageError(fmt.Errorf("server-setup: %w", err))
	}
	changes, missing := 0, 0
	for _, s := range steps {
		switch s.Action {
		case setup.Change:
			changes++
		case setup.Missing:
			missing++
		}
	}
	// Nothing is changed while something is missing: a sudoers rule for
	// a helper others may replace, or for a server with no policy, would
	// be worse than none.
	if *apply && changes > 0 && missing == 0 {
		if err := setup.Apply(steps); err != nil {
			return fmt.Errorf("server-setup: %w", err)
		}
	}
	for _, s := range steps {
		action := string(s.Action)
		if s.Action == setup.Change && *apply && missing == 0 {
			action = "done"
		}
		fmt.Fprintf(o.stdout, "%-12s %s: %s\n", "["+action+"]", safetext.Escape(s.What), safetext.Escape(s.Detail))
	}
	switch {
	case changes == 0:
		fmt.Fprintln(o.stdout, "nothing to change")
	case !*apply:
		fmt.Fprintf(o.stdout, "%d change(s): run again with --apply to make them\n", changes)
	}
	if missing > 0 {
		return fmt.Errorf("server-setup: %d thing(s) MISSING above: nothing was changed; the server half cannot work until they are fixed", missing)
	}
	return nil
}
