package lab_test

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vpn-pppssh/vpn-pppssh/lab"
)

// The .deb of make deb, as an admin uses it: installed into a clean root
// (this lab's own mount namespace, /usr under an overlay), a link
// configured in /etc/vpn-pppssh and LINKS, brought up at "boot" by the
// installed init script run as init runs it, stopped, installed again,
// and purged, leaving only the admin's link file.
func TestDebianPackage(t *testing.T) {
	l := needLab(t)
	deb := os.Getenv(debEnv)
	if deb == "" {
		t.Fatal(debEnv + " is not set: the lab's outer process builds the .deb (make deb-package)")
	}
	if err := overlayUsr(t); err != nil {
		t.Fatal(err)
	}
	sh := func(args ...string) string {
		t.Helper()
		begin := time.Now()
		out, err := lab.Sh(args[0], args[1:]...)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %v", strings.Join(args, " "), time.Since(begin).Round(time.Millisecond))
		return out
	}
	// man-db's trigger rebuilds the manual's index at every dpkg run,
	// half of dpkg's time in the lab (over ten seconds each under load):
	// that is Debian's work, not the package's. Its switch is put back
	// after the test, should this lab's /var not be its own overlay.
	const manAutoUpdate = "/var/lib/man-db/auto-update"
	switch err := os.Remove(manAutoUpdate); {
	case err == nil:
		t.Cleanup(func() {
			if err := os.WriteFile(manAutoUpdate, nil, 0o644); err != nil {
				t.Errorf("putting back %s: %v", manAutoUpdate, err)
			}
		})
	case !errors.Is(err, fs.ErrNotExist):
		t.Fatal(err)
	}
	sh("dpkg", "-i", deb)
	for _, f := range []string{"/usr/sbin/vpn-pppssh", "/etc/init.d/vpn-pppssh", "/etc/ppp/ip-up.d/vpn-pppssh",
		"/etc/ppp/ip-down.d/vpn-pppssh", "/etc/default/vpn-pppssh", "/lib/systemd/system/vpn-pppssh@.service",
		"/usr/share/man/man8/vpn-pppssh.8.gz", "/usr/share/man/man5/vpn-pppssh.conf.5.gz",
		"/usr/share/doc/vpn-pppssh/copyright", "/usr/share/bash-completion/completions/vpn-pppssh"} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("the package did not install %s: %v", f, err)
		}
	}
	if unit, err := os.ReadFile("/lib/systemd/system/vpn-pppssh@.service"); err != nil || !strings.Contains(string(unit), "ExecStart=/usr/sbin/vpn-pppssh -n %i start --foreground") {
		t.Errorf("the unit does not run the installed program: %v\n%s", err, unit)
	}
	if out := sh("/usr/sbin/vpn-pppssh", "--version"); !strings.HasPrefix(out, "vpn-pppssh 0.") {
		t.Errorf("--version: %q", out)
	}

	// The admin's part: a link file and LINKS.
	office := l.Config("office", 1)
	conf, err := os.ReadFile(office)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("/etc/vpn-pppssh/office.conf", conf, 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove("/etc/vpn-pppssh/office.conf")
	if err := os.WriteFile("/etc/default/vpn-pppssh", []byte("LINKS=\"office\"\nSTART_WAIT=\"60\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	// Boot: the script as init runs it, with an empty environment, in
	// the client's network namespace.
	initScript := func(action string) (string, int) {
		begin := time.Now()
		cmd := exec.Command("ip", "netns", "exec", lab.ClientNS, "env", "-i", "PATH=/sbin:/usr/sbin:/bin:/usr/bin", "/etc/init.d/vpn-pppssh", action)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("init script %s: %v", action, err)
		}
		t.Logf("/etc/init.d/vpn-pppssh %s -> exit %d in %v\n%s", action, code, time.Since(begin).Round(time.Millisecond), out)
		return string(out), code
	}
	// Whatever fails below, the link goes with the test: a link left up
	// holds its addresses on the server and fails every later test.
	t.Cleanup(func() { client(t, "-c", office, "stop") })
	if out, code := initScript("start"); code != 0 || !strings.Contains(out, "link office up") {
		t.Fatalf("boot start: exit %d", code)
	}
	ping(t, lab.ClientNS, "198.51.100.2")
	if _, code := initScript("status"); code != 0 {
		t.Errorf("init status of a running link: exit %d", code)
	}
	if out, _ := lab.InNS(lab.ClientNS, "/usr/sbin/vpn-pppssh", "status"); !strings.Contains(out, "office") || !strings.Contains(out, "up (pid") {
		t.Errorf("status of all links: %q", out)
	}
	if _, code := initScript("stop"); code != 0 {
		t.Errorf("init stop: exit %d", code)
	}
	wantClean(t, 5*time.Second)
	if _, code := initScript("status"); code != 3 {
		t.Errorf("init status after stop: exit %d, want 3", code)
	}

	// Installed again over itself: the admin's defaults stay.
	sh("dpkg", "-i", deb)
	if b, err := os.ReadFile("/etc/default/vpn-pppssh"); err != nil || !strings.Contains(string(b), `LINKS="office"`) {
		t.Errorf("reinstalling replaced the admin's /etc/default/vpn-pppssh: %v %q", err, b)
	}
	// Purged: the package's files go, the admin's link file stays.
	sh("dpkg", "--purge", "vpn-pppssh")
	for _, f := range []string{"/usr/sbin/vpn-pppssh", "/etc/init.d/vpn-pppssh", "/etc/default/vpn-pppssh", "/etc/ppp/ip-up.d/vpn-pppssh",
		"/lib/systemd/system/vpn-pppssh@.service", "/usr/share/doc/vpn-pppssh"} {
		if _, err := os.Lstat(f); !os.IsNotExist(err) {
			t.Errorf("%s after purge: %v", f, err)
		}
	}
	if _, err := os.Stat("/etc/vpn-pppssh/office.conf"); err != nil {
		t.Errorf("purge removed the admin's link file: %v", err)
	}
	if out, err := lab.Sh("dpkg", "-s", "vpn-pppssh"); err == nil {
		t.Errorf("dpkg still knows the package after purge: %s", out)
	}
}

// overlayUsr puts /usr under an overlay in this lab's mount namespace (the
// lab runs in one of its own, under UML or unshare), so that the package's
// files never reach the host's /usr. /lib is /usr/lib on this Debian.
func overlayUsr(t *testing.T) error {
	if fi, err := os.Lstat("/lib"); err != nil {
		return err
	} else if fi.Mode()&os.ModeSymlink == 0 {
		return errors.New("/lib is not a link to /usr/lib: the overlay on /usr would not cover the package's /lib files")
	}
	dir := "/run/lab-overlay/usr"
	if _, err := os.Stat(filepath.Join(dir, "upper")); err == nil {
		return nil // done by an earlier test in this lab
	}
	for _, d := range []string{"upper", "work"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	_, err := lab.Sh("mount", "-t", "overlay", "overlay", "-o", "lowerdir=/usr,upperdir="+dir+"/upper,workdir="+dir+"/work", "/usr")
	return err
}
