package lab

import (
	"context"
	"errors"
	"fmt"
	"github.com/vpn-pppssh/vpn-pppssh/pppssh"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// InsideEnv is set in the environment of a command that runs inside the lab.
const InsideEnv = "VPN_LAB_INSIDE"

// Inside reports whether this process runs inside a lab.
func Inside() bool { return os.Getenv(InsideEnv) == "1" }

// HostHasPPP reports whether the running kernel can run pppd.
func HostHasPPP() bool {
	if _, err := os.Stat("/dev/ppp"); err == nil {
		return true
	}
	_, err := os.Stat("/sys/module/ppp_generic")
	return err == nil
}

// UMLKernel is Debian's user-mode-linux kernel.
const UMLKernel = "/usr/bin/linux.uml"

// Result is how a command run in the lab ended.
type Result struct {
	Output   []byte // the command's stdout and stderr
	ExitCode int
	Console  string // the UML kernel's console log, if any
}

// KernelEnv names, inside a lab, the kernel it runs on: "uml" or "host".
const KernelEnv = "VPN_LAB_KERNEL"

// OnHostKernel reports whether this lab runs on the host's own kernel
// (which may lack PPP) rather than under User-Mode Linux.
func OnHostKernel() bool { return os.Getenv(KernelEnv) == "host" }

// Run runs argv inside a fresh lab: under a User-Mode Linux kernel when the
// host has no PPP, otherwise in private mount, UTS and pid namespaces of
// the host. workdir must be on the host's file system and survives the
// run; env adds to a clean environment.
func Run(ctx context.Context, workdir string, argv []string, env []string) (Result, error) {
	return run(ctx, workdir, argv, env, HostHasPPP())
}

// RunOnHost is Run on the host's kernel whether or not it has PPP: for
// the tun and tap modes, which need only TUN, veth and namespaces.
func RunOnHost(ctx context.Context, workdir string, argv []string, env []string) (Result, error) {
	return run(ctx, workdir, argv, env, true)
}

func run(ctx context.Context, workdir string, argv []string, env []string, native bool) (Result, error) {
	if len(argv) == 0 {
		return Result{}, errors.New("lab: empty command")
	}
	kernel := "uml"
	if native {
		kernel = "host"
	}
	env = append(env, KernelEnv+"="+kernel)
	if !native {
		if _, err := os.Stat(UMLKernel); err != nil {
			return Result{}, fmt.Errorf("lab: the kernel has no PPP and %s is missing (apt-get install user-mode-linux): %w", UMLKernel, err)
		}
	}
	script := filepath.Join(workdir, "lab-init.sh")
	outFile := filepath.Join(workdir, "lab-output")
	exitFile := filepath.Join(workdir, "lab-exit")
	os.Remove(outFile)
	os.Remove(exitFile)
	if err := os.WriteFile(script, []byte(initScript(argv, env, workdir, outFile, exitFile, native)), 0o755); err != nil {
		return Result{}, fmt.Errorf("lab: writing init script: %w", err)
	}
	var cmd *exec.Cmd
	consoleFile := filepath.Join(workdir, "lab-console")
	if native {
		// Its own pids too: the lab's tests count and kill pppd, sshd and
		// vpn-pppssh processes by name and must see only their own.
		cmd = exec.CommandContext(ctx, "unshare", "--mount", "--uts", "--pid", "--mount-proc", "--propagation", "private", "--fork", "/bin/sh", script)
	} else {
		cmd = exec.CommandContext(ctx, UMLKernel, "mem=2048M", "rootfstype=hostfs", "rootflags=/", "rw",
			"init="+script, "con=null", "con0=null,fd:2", InsideEnv+"=1")
	}
	console, err := os.Create(consoleFile)
	if err != nil {
		return Result{}, err
	}
	defer console.Close()
	cmd.Stdout, cmd.Stderr = console, console
	runErr := cmd.Run()
	var r Result
	r.Output, _ = os.ReadFile(outFile)
	con, _ := os.ReadFile(consoleFile)
	r.Console = string(con)
	code, err := os.ReadFile(exitFile)
	if err != nil {
		return r, fmt.Errorf("lab: the command did not finish (%v); console:\n%s", runErr, tail(r.Console, 3000))
	}
	r.ExitCode, err = strconv.Atoi(strings.TrimSpace(string(code)))
	if err != nil {
		return r, fmt.Errorf("lab: bad exit file %q", code)
	}
	return r, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// initScript prepares the lab's file systems and kernel, runs the command
// and records its exit status. Under UML it is init (pid 1) and must halt.
func initScript(argv, env []string, workdir, outFile, exitFile string, native bool) string {
	var b strings.Builder
	b.WriteString("#!/bin/sh\n# vpn-pppssh lab init (generated)\n")
	b.WriteString("export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n")
	if !native {
		b.WriteString(`mount -t proc proc /proc
mount -t sysfs sys /sys
mountpoint -q /dev || mount -t devtmpfs dev /dev
mkdir -p /dev/pts
mount -t devpts -o ptmxmode=666,gid=5,mode=620 devpts /dev/pts
`)
	}
	b.WriteString("mount -t tmpfs -o mode=755 tmpfs /run\n")
	if !native {
		b.WriteString(`mods=/run/lab-modules
mkdir -p $mods/lib/modules
ln -s /usr/lib/uml/modules/$(uname -r) $mods/lib/modules/$(uname -r)
for m in ppp_async ppp_generic veth overlay tun bridge iptable_nat iptable_filter xt_MASQUERADE xt_nat xt_comment nft_masq nft_chain_nat ip6table_nat ip6table_raw ip6t_rpfilter; do
	modprobe -d $mods $m 2>/dev/null
done
`)
	}
	// Overlays keep the host's /etc, /root, /home and /var unchanged.
	b.WriteString(`mkdir -p /run/lab-overlay
for d in /etc /root /home /var; do
	n=/run/lab-overlay/$(basename $d)
	mkdir -p $n/upper $n/work
	mount -t overlay overlay -o lowerdir=$d,upperdir=$n/upper,workdir=$n/work $d || echo "lab: overlay on $d failed" >&2
done
mkdir -p /run/lock /run/sshd
ip link set lo up
hostname localhost
`)
	fmt.Fprintf(&b, "cd %s\n", pppssh.ShellQuote(workdir))
	b.WriteString("env -i PATH=\"$PATH\" HOME=/root " + InsideEnv + "=1")
	for _, e := range env {
		b.WriteString(" " + pppssh.ShellQuote(e))
	}
	for _, a := range argv {
		b.WriteString(" " + pppssh.ShellQuote(a))
	}
	fmt.Fprintf(&b, " >%s 2>&1 </dev/null\n", pppssh.ShellQuote(outFile))
	fmt.Fprintf(&b, "echo $? >%s\nsync\n", pppssh.ShellQuote(exitFile))
	if !native {
		b.WriteString("halt -f\n")
	}
	return b.String()
}
