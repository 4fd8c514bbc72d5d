//go:build linux && (amd64 || arm64 || riscv64 || loong64 || ppc64le || mips64le)

package firewall

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The ip_tables and ip6_tables socket-option calls, made on a raw socket
// of the family as libiptc does. The structures are encoded with encoding/binary; unsafe is only
// used to hand buffers to the kernel.

// openRawSocket opens the control socket of family f, in the network
// namespace nsFD refers to when nsFD >= 0. A socket stays bound to the
// namespace it was created in, so only its creation needs a thread inside
// that namespace.
func openRawSocket(nsFD int, f *xtFamily) (int, error) {
	fd := -1
	err := inNetNS(nsFD, func() error {
		var err error
		fd, err = unix.Socket(f.domain, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
		if err != nil {
			return fmt.Errorf("opening raw socket for %s: %w", f.name, err)
		}
		return nil
	})
	return fd, err
}

// tablesInUse reads the names of family f's tables that exist in the
// namespace (/proc/net/ip_tables_names or ip6_tables_names), so that
// looking for our rules does not create a table: asking the kernel for a
// table it has not set up in a namespace sets it up, nat hooks and all.
// ok is false when the list cannot be read.
func tablesInUse(nsFD int, f *xtFamily) (names map[string]bool, ok bool) {
	var data []byte
	none := false
	err := inNetNS(nsFD, func() error {
		// thread-self: /proc/self/net is the namespace of the
		// process's main thread, not of this one.
		var err error
		data, err = os.ReadFile("/proc/thread-self/net/" + f.tablesNames)
		if errors.Is(err, os.ErrNotExist) {
			// No such list while /proc/net is there: the kernel has
			// not loaded the family's x_tables yet.
			if _, statErr := os.Stat("/proc/thread-self/net/dev"); statErr == nil {
				none, err = true, nil
			}
		}
		return err
	})
	if err != nil {
		return nil, false
	}
	names = map[string]bool{}
	if none {
		return names, true
	}
	for _, n := range strings.Fields(string(data)) {
		names[n] = true
	}
	return names, true
}

func getsockopt(fd int, f *xtFamily, opt int, buf []byte) (int, error) {
	n := uint32(len(buf))
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), uintptr(f.level), uintptr(opt),
		uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

func setsockopt(fd int, f *xtFamily, opt int, buf []byte) error {
	_, _, errno := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), uintptr(f.level), uintptr(opt),
		uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0)
	if errno != 0 {
		return errno
	}
	return nil
}

func putName(b []byte, name string) error {
	if len(name) >= tableNameLen {
		return fmt.Errorf("table name %q too long", name)
	}
	copy(b[:tableNameLen], name)
	return nil
}

// readTable reads a whole table of family f: IPT_SO_GET_INFO, then
// IPT_SO_GET_ENTRIES with the size it reported (IP6T_SO_* for IPv6).
// EAGAIN means the table changed in between.
func readTable(fd int, f *xtFamily, name string) (*iptTable, error) {
	info := make([]byte, getinfoSize)
	if err := putName(info, name); err != nil {
		return nil, err
	}
	if n, err := getsockopt(fd, f, iptSoGetInfo, info); err != nil {
		return nil, fmt.Errorf("getting info of %s table %s: %w", f.name, name, err)
	} else if n != getinfoSize {
		return nil, fmt.Errorf("getting info of %s table %s: short answer (%d bytes)", f.name, name, n)
	}
	t := &iptTable{
		fam:        f,
		name:       name,
		validHooks: le.Uint32(info[getinfoValidHooks:]),
		numEntries: le.Uint32(info[getinfoNumEntries:]),
	}
	for h := range numHooks {
		t.hookEntry[h] = le.Uint32(info[getinfoHookEntry+4*h:])
		t.underflow[h] = le.Uint32(info[getinfoUnderflow+4*h:])
	}
	size := le.Uint32(info[getinfoSizeField:])

	buf := make([]byte, getEntriesHeader+int(size))
	_ = putName(buf, name)
	le.PutUint32(buf[getEntriesSizeField:], size)
	if n, err := getsockopt(fd, f, iptSoGetEntries, buf); err != nil {
		return nil, fmt.Errorf("getting entries of %s table %s: %w", f.name, name, err)
	} else if n != len(buf) {
		return nil, fmt.Errorf("getting entries of %s table %s: short answer (%d of %d bytes)", f.name, name, n, len(buf))
	}
	t.entries = buf[getEntriesHeader:]
	return t, nil
}

// replaceTable installs t with IPT_SO_SET_REPLACE. oldEntries must be the
// entry count of the table being replaced (else the kernel says EAGAIN); the
// kernel hands back the old table's counters, one 16-byte xt_counters per
// old entry, which are returned.
func replaceTable(fd int, t *iptTable, oldEntries uint32) ([]byte, error) {
	if oldEntries == 0 {
		return nil, fmt.Errorf("replacing table %s: no old entries", t.name)
	}
	// One allocation holds the request and, after it, the room for the
	// old counters, so that the pointer written into the request refers
	// to memory that the syscall itself keeps alive.
	reqLen := replaceHeader + len(t.entries)
	buf := make([]byte, reqLen+int(oldEntries)*countersSize)
	req := buf[:reqLen]
	if err := putName(req, t.name); err != nil {
		return nil, err
	}
	le.PutUint32(req[replaceValidHooks:], t.validHooks)
	le.PutUint32(req[replaceNumEntries:], t.numEntries)
	le.PutUint32(req[replaceSize:], uint32(len(t.entries)))
	for h := range numHooks {
		le.PutUint32(req[replaceHookEntry+4*h:], t.hookEntry[h])
		le.PutUint32(req[replaceUnderflow+4*h:], t.underflow[h])
	}
	le.PutUint32(req[replaceNumCounters:], oldEntries)
	le.PutUint64(req[replaceCounters:], uint64(uintptr(unsafe.Pointer(&buf[reqLen]))))
	copy(req[replaceHeader:], t.entries)
	err := setsockopt(fd, t.fam, iptSoSetReplace, req)
	runtime.KeepAlive(buf)
	if errors.Is(err, unix.ENOENT) {
		return nil, fmt.Errorf("replacing table %s: the kernel lacks a match or target the rules use: %w", t.name, err)
	}
	if err != nil {
		return nil, fmt.Errorf("replacing table %s: %w", t.name, err)
	}
	return buf[reqLen:], nil
}

// addCounters adds counters (one xt_counters per entry of the current
// table) to the entries of family f's table name with
// IPT_SO_SET_ADD_COUNTERS (IP6T_SO_SET_ADD_COUNTERS).
func addCounters(fd int, f *xtFamily, name string, counters []byte) error {
	buf := make([]byte, countersInfoHeader+len(counters))
	if err := putName(buf, name); err != nil {
		return err
	}
	le.PutUint32(buf[countersInfoNum:], uint32(len(counters)/countersSize))
	copy(buf[countersInfoHeader:], counters)
	if err := setsockopt(fd, f, iptSoSetAddCounters, buf); err != nil {
		return fmt.Errorf("restoring counters of table %s: %w", name, err)
	}
	return nil
}

// kernelHasExtension asks the kernel whether it has revision 0 of family
// f's match or target name (IPT_SO_GET_REVISION_MATCH/_TARGET, or the
// IP6T_ ones, with struct xt_get_revision), as iptables does before using
// one. The kernel tries to
// load the module first; ENOENT means it has none by that name,
// EPROTONOSUPPORT that it lacks that revision.
func kernelHasExtension(fd int, f *xtFamily, name string, target bool) (bool, error) {
	buf := make([]byte, revisionSize)
	copy(buf[:xtNameLen-1], name)
	opt := f.soRevMatch
	if target {
		opt = f.soRevTarget
	}
	_, err := getsockopt(fd, f, opt, buf)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.EPROTONOSUPPORT):
		return false, nil
	default:
		return false, err
	}
}
