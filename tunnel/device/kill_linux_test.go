package device

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// childEnv, set to a device name, makes the test binary the child of
// TestKillLeavesNoDevice.
const childEnv = "TUNNEL_DEVICE_TEST_CHILD"

// runChild enters the network namespace at fd 3, creates the TUN device
// named by childEnv, prints its name and blocks reading stdin: the parent
// kills it there.
func runChild() int {
	runtime.LockOSThread()
	if err := netns.Set(netns.NsHandle(3)); err != nil {
		fmt.Fprintf(os.Stderr, "child: entering the namespace: %v\n", err)
		return 2
	}
	d, err := Create(Config{Kind: TUN, Name: os.Getenv(childEnv)})
	if err != nil {
		fmt.Fprintf(os.Stderr, "child: %v\n", err)
		return 2
	}
	fmt.Println(d.Name())
	io.Copy(io.Discard, os.Stdin)
	return 0 // the parent closed stdin: it failed before its kill
}

func TestKillLeavesNoDevice(t *testing.T) {
	n := newNS(t)
	nsFd, err := unix.Dup(int(n.ns))
	if err != nil {
		t.Fatal(err)
	}
	nsFile := os.NewFile(uintptr(nsFd), "netns")
	defer nsFile.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=vpnkill0")
	cmd.ExtraFiles = []*os.File{nsFile}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the child: %v", err)
	}
	waited := false
	t.Cleanup(func() {
		stdin.Close()
		if !waited {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})

	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the device name from the child: %v (stderr: %s)", err, stderr.String())
	}
	name := strings.TrimSpace(line)
	if name != "vpnkill0" {
		t.Fatalf("child made %q, want vpnkill0", name)
	}
	link, err := n.nl.LinkByName(name)
	if err != nil {
		t.Fatalf("the child's device is not in the namespace: %v", err)
	}
	if tt, ok := link.(*netlink.Tuntap); !ok || !tt.NonPersist {
		t.Fatalf("the child's device is %s %+v, want a non-persistent tuntap", link.Type(), link)
	}

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("killing child %d: %v", cmd.Process.Pid, err)
	}
	err = cmd.Wait()
	waited = true
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v, want killed by SIGKILL", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !n.gone(t, link.Attrs().Index) {
		if time.Now().After(deadline) {
			t.Fatalf("%s still exists 10 s after its process was killed", name)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
