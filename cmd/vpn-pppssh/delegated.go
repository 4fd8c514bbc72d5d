package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

// delegatedFlags are the only flags accepted when another user runs this
// program as root through sudo (or doas, pkexec, a set-uid bit). Every
// other flag would let that user choose, as root, a program or a folder of
// programs that root runs (--pppd, --ip-up-dir, --ip-down-dir), a file that
// root trusts (--config, --ssh-identity: root's own key used on the user's
// behalf, --ssh-known-hosts: whom that key is shown to), what root's key
// runs on the server (--server-pppd, --server-helper) and where or as whom
// (--server-hostname, --server-username, --server-port), or the host's
// routes and firewall (--server-networks, --default-route, ...). -n NAME
// stays: it picks a file the admin wrote. The list allows rather than
// refuses, so a key added later is refused until someone decides otherwise.
var delegatedFlags = map[string]bool{
	"name": true, "verbose": true, "json": true, "foreground": true,
	// Timers and counters change how long root keeps trying, nothing else.
	"connect-timeout": true, "keepalive": true, "persist": true, "holdoff-max": true, "maxfail": true,
}

// delegatedBy says who handed this process its root rights, from what sudo,
// doas and pkexec put in the environment (which their callers cannot set),
// or a set-uid bit. It is empty when root runs the program itself.
func delegatedBy(getenv func(string) string) string {
	if uid := getenv("SUDO_UID"); uid != "" && uid != "0" {
		return "sudo (SUDO_UID=" + uid + ")"
	}
	if u := getenv("DOAS_USER"); u != "" && u != "root" {
		return "doas (DOAS_USER=" + u + ")"
	}
	if uid := getenv("PKEXEC_UID"); uid != "" && uid != "0" {
		return "pkexec (PKEXEC_UID=" + uid + ")"
	}
	if os.Getuid() != os.Geteuid() {
		return fmt.Sprintf("a set-uid bit (uid %d)", os.Getuid())
	}
	return ""
}

// refuseDelegatedFlags refuses, when another user runs this program as
// root, every flag outside delegatedFlags, naming them.
func refuseDelegatedFlags(fs *pflag.FlagSet, getenv func(string) string) error {
	by := delegatedBy(getenv)
	if by == "" {
		return nil
	}
	var refused []string
	fs.Visit(func(f *pflag.Flag) {
		// --notify-fd names a descriptor root writes to and closes: only
		// the background copy that startBackground made may have it
		// (sudo closes every descriptor above 2 and resets the
		// environment, so a user cannot fake backgroundEnv or fd 3).
		if f.Name == "notify-fd" && getenv(backgroundEnv) == "1" {
			return
		}
		if !delegatedFlags[f.Name] {
			refused = append(refused, "--"+f.Name)
		}
	})
	if len(refused) == 0 {
		return nil
	}
	return fmt.Errorf("refusing %s: run through %s, this program would act as root on another user's choice; "+
		"only -n NAME picks a link, and its settings belong in the admin's %s/NAME.conf "+
		"(with full root rights, run it from a clean root login such as sudo su -, where SUDO_UID is not set)",
		strings.Join(refused, " "), by, confDir)
}
