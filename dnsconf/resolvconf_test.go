package dnsconf

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeResolvconf installs, as the first resolvconf candidate of h, a
// script that appends each run to a log (its arguments, its environment,
// then its standard input) and fails with exit status 3 and a message
// (with an escape sequence in it) while a file "fail" exists beside it.
// It returns the log's path.
func fakeResolvconf(t *testing.T, h *host) string {
	t.Helper()
	if _, err := exec.LookPath("/bin/sh"); err != nil {
		t.Skip("no /bin/sh for the fake resolvconf")
	}
	prog := h.programs[0]
	dir := filepath.Dir(prog)
	log := filepath.Join(dir, "runs.log")
	script := `#!/bin/sh
d=$(dirname "$0")
{
	echo "argv: $*"
	echo "env: $(env | grep -v '^PWD=' | grep -v '^SHLVL=' | grep -v '^_=' | sort | tr '\n' ' ')"
	echo "stdin:"
	cat
	echo "--"
} >>"$d/runs.log"
if [ -e "$d/fail" ]; then
	printf 'resolvconf: \033[31mpermission denied\n' >&2
	exit 3
fi
`
	writeFile(t, prog, script, 0o755)
	return log
}

func TestResolvconfApplyAndClose(t *testing.T) {
	h := testHost(t)
	writeFile(t, h.resolvConf, origText, 0o644)
	log := fakeResolvconf(t, h)
	cfg := office
	cfg.Servers = addrs("198.51.100.2", "fe80::1")
	s := mustApply(t, h, cfg)
	if s.Backend() != BackendResolvconf {
		t.Errorf("backend %q, want resolvconf (it is installed, resolved does not run)", s.Backend())
	}
	want := "argv: -a ppp0.vpn-pppssh\n" +
		"env: PATH=/usr/sbin:/usr/bin:/sbin:/bin \n" +
		"stdin:\nnameserver 198.51.100.2\nnameserver fe80::1%ppp0\nsearch example.org\n--\n"
	if got := readFile(t, log); got != want {
		t.Errorf("resolvconf ran as:\n%s\nwant:\n%s", got, want)
	}
	if got := s.String(); got != "dns 198.51.100.2 fe80::1 search example.org via resolvconf on ppp0" {
		t.Errorf("String() = %q", got)
	}
	if readFile(t, h.resolvConf) != origText {
		t.Error("resolv.conf was written: that is resolvconf's job")
	}
	os.Remove(log)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, log); !strings.HasPrefix(got, "argv: -d ppp0.vpn-pppssh\n") || !strings.Contains(got, "stdin:\n--\n") {
		t.Errorf("undone with:\n%s", got)
	}
	if Leftovers(h.runDir, "office") {
		t.Error("state file left")
	}
	os.Remove(log)
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := os.Stat(log); err == nil {
		t.Error("the second Close ran resolvconf again")
	}
}

// When resolvconf fails, the error names the command and quotes what it
// said (safe for a terminal), and the record is deleted again.
func TestResolvconfFails(t *testing.T) {
	h := testHost(t)
	log := fakeResolvconf(t, h)
	writeFile(t, filepath.Join(filepath.Dir(log), "fail"), "", 0o644)
	s, err := newSettings(office, h)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Apply(context.Background())
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("Apply: %v; want exit status 3", err)
	}
	msg := err.Error()
	for _, want := range []string{"resolvconf: running " + h.programs[0] + " -a ppp0.vpn-pppssh", "exit status 3", `\x1b[31mpermission denied`} {
		if !strings.Contains(msg, want) {
			t.Errorf("the error %q does not say %q", msg, want)
		}
	}
	if strings.Contains(msg, "\x1b") {
		t.Errorf("the error carries an escape sequence: %q", msg)
	}
	// The delete failed too, so the state stays for Close and Cleanup.
	if got := readFile(t, log); !strings.Contains(got, "argv: -a ") || !strings.Contains(got, "argv: -d ppp0.vpn-pppssh") {
		t.Errorf("runs:\n%s\nwant -a, then -d to undo it", got)
	}
	if !Leftovers(h.runDir, "office") {
		t.Fatal("an undo that failed dropped the state")
	}
	os.Remove(filepath.Join(filepath.Dir(log), "fail"))
	if err := s.Close(); err != nil {
		t.Errorf("Close once resolvconf works: %v", err)
	}
	if Leftovers(h.runDir, "office") {
		t.Error("state left after Close")
	}
}

// A failed -a whose -d works leaves nothing behind.
func TestResolvconfFailedAddRolledBack(t *testing.T) {
	h := testHost(t)
	prog := h.programs[0]
	log := filepath.Join(filepath.Dir(prog), "runs.log")
	writeFile(t, prog, "#!/bin/sh\necho \"$*\" >>\""+log+"\"\n[ \"$1\" = -d ]\n", 0o755)
	s, err := newSettings(office, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(context.Background()); err == nil {
		t.Fatal("Apply succeeded")
	}
	if got := readFile(t, log); got != "-a ppp0.vpn-pppssh\n-d ppp0.vpn-pppssh\n" {
		t.Errorf("runs %q", got)
	}
	if Leftovers(h.runDir, "office") {
		t.Error("state left after a rollback that worked")
	}
	if err := s.Close(); err != nil {
		t.Error(err)
	}
}

func TestResolvconfCrashRecovery(t *testing.T) {
	h := testHost(t)
	log := fakeResolvconf(t, h)
	mustApply(t, h, office) // dies
	os.Remove(log)
	// From the state file alone: it names the program that was run.
	if err := Cleanup(h.runDir, "office"); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, log); !strings.HasPrefix(got, "argv: -d ppp0.vpn-pppssh\n") {
		t.Errorf("Cleanup ran:\n%s", got)
	}
	if Leftovers(h.runDir, "office") {
		t.Error("state left")
	}
}

// A candidate that is not an executable file is passed over.
func TestResolvconfNotExecutable(t *testing.T) {
	h := testHost(t)
	writeFile(t, h.programs[0], "#!/bin/sh\nexit 0\n", 0o644)
	if err := os.Mkdir(filepath.Join(filepath.Dir(h.programs[0]), "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	h.programs = append(h.programs, filepath.Join(filepath.Dir(h.programs[0]), "dir"), "/nonexistent/resolvconf")
	s := mustApply(t, h, office)
	defer s.Close()
	if s.Backend() != BackendFile {
		t.Errorf("backend %q, want the file", s.Backend())
	}
	h.force = BackendResolvconf
	s2, err := newSettings(Config{Link: "other", Iface: "ppp1", Servers: addrs("198.51.100.3")}, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Apply(context.Background()); err == nil || !strings.Contains(err.Error(), "DNS backend resolvconf: none of") {
		t.Errorf("resolvconf asked for but missing: %v", err)
	}
}

// A process that died while `resolvconf -a` ran may not have added the
// record: a -d that fails then does not keep the state (and the link's next
// start) stuck. A record known to be added is not dropped that way.
func TestResolvconfCrashDuringAdd(t *testing.T) {
	h := testHost(t)
	log := fakeResolvconf(t, h)
	writeFile(t, filepath.Join(filepath.Dir(log), "fail"), "", 0o644)
	st := &state{Link: "office", Backend: BackendResolvconf, Iface: "ppp0", Servers: office.Servers,
		Program: h.programs[0], Record: "ppp0.vpn-pppssh", Pending: true}
	if err := h.writeState(st); err != nil {
		t.Fatal(err)
	}
	if err := cleanup(h, "office"); err != nil {
		t.Errorf("Cleanup of a pending record: %v", err)
	}
	if got := readFile(t, log); !strings.HasPrefix(got, "argv: -d ppp0.vpn-pppssh\n") || Leftovers(h.runDir, "office") {
		t.Errorf("runs:\n%s\nwant one -d, and no state left", got)
	}
	st.Pending = false
	if err := h.writeState(st); err != nil {
		t.Fatal(err)
	}
	if err := cleanup(h, "office"); err == nil || !Leftovers(h.runDir, "office") {
		t.Errorf("Cleanup of an added record whose -d fails: %v; want the error, and the state kept", err)
	}
}
