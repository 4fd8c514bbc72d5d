package dnsconf

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/vpn-pppssh/vpn-pppssh/internal/safetext"
)

// recordSuffix ends the name of the resolvconf record of a link's
// interface: ppp0.vpn-pppssh. Both resolvconf implementations (Debian's
// and openresolv) order records by the part before the dot, as they do
// pppd's own "ppp0" record.
const recordSuffix = ".vpn-pppssh"

func recordName(iface string) string { return iface + recordSuffix }

// programEnv is resolvconf's whole environment: a fixed PATH, nothing of
// the caller's.
var programEnv = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}

// programTimeout bounds one run of resolvconf.
const programTimeout = 15 * time.Second

// maxProgramOutput bounds what of resolvconf's output an error quotes.
const maxProgramOutput = 512

// findProgram returns the first of paths that is an executable regular
// file, or "".
func findProgram(paths []string) string {
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// applyResolvconf gives the link's settings to resolvconf(8) as the record
// IFACE.vpn-pppssh: `resolvconf -a IFACE.vpn-pppssh` with the resolv.conf
// lines on its standard input.
func applyResolvconf(ctx context.Context, h *host, cfg Config, program string) (*state, error) {
	st := &state{Link: cfg.Link, Backend: BackendResolvconf, Iface: cfg.Iface, Servers: cfg.Servers, Search: cfg.Search,
		Program: program, Record: recordName(cfg.Iface), Pending: true}
	if err := h.writeState(st); err != nil {
		return nil, err
	}
	err := runProgram(ctx, program, linkText(cfg), "-a", st.Record)
	st.Pending = false // it returned: the record is there, or must be deleted
	if err != nil {
		return rollback(h, st, err)
	}
	if err := h.writeState(st); err != nil {
		return rollback(h, st, err)
	}
	return st, nil
}

// undoResolvconf deletes the link's record: `resolvconf -d IFACE.vpn-pppssh`.
// For a record whose -a never returned (the process died), a failure is
// taken for a record that was never added (openresolv refuses to delete
// one it does not have): else that link's Cleanup, and its next start,
// would fail for ever.
func undoResolvconf(ctx context.Context, h *host, st *state) error {
	err := runProgram(ctx, st.Program, nil, "-d", st.Record)
	if err != nil && st.Pending {
		h.log.Warn("deleting a resolvconf record a dead process may never have added", "link", st.Link, "err", err)
		return nil
	}
	return err
}

// runProgram runs resolvconf directly (no shell) with a fixed environment
// and stdin as its standard input. Its error names the command and quotes
// what the program said, made safe for a terminal.
func runProgram(ctx context.Context, program string, stdin []byte, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, programTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, program, args...)
	cmd.Env = programEnv
	cmd.Dir = "/"
	cmd.Stdin = bytes.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if err == nil {
		return nil
	}
	said := strings.TrimSpace(out.String())
	if len(said) > maxProgramOutput {
		said = said[:maxProgramOutput] + "..."
	}
	what := fmt.Sprintf("resolvconf: running %s %s", program, strings.Join(args, " "))
	if said == "" {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s: %w: %s", what, err, safetext.Escape(said))
}
