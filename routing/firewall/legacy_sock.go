//go:build linux && (amd64 || arm64 || riscv64 || loong64 || ppc64le || mips64le)

package firewall

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The ip_tables socket-option calls, made on a raw IPv4 socket as libiptc
// does. The structures are encoded with encoding/binary; unsafe is only
// used to hand buffers to the kernel.

// openRawSocket opens the control socket, in the network namespace nsFD
// refers to when nsFD >= 0. A socket stays bound to the namespace it was
// created in, so only its creation needs a thread inside that namespace.
func openRawSocket(nsFD int) (int, error) {
	if nsFD < 0 {
		return rawSocket()
	}
	type result struct {
		fd  int
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Setns(nsFD, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread() // still in its own namespace: reusable
			ch <- result{-1, fmt.Errorf("entering network namespace: %w", err)}
			return
		}
		// The thread stays locked, so it ends with this goroutine instead
		// of going back to the scheduler in a foreign namespace.
		fd, err := rawSocket()
		ch <- result{fd, err}
	}()
	r := <-ch
	return r.fd, r.err
}

func rawSocket() (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		return -1, fmt.Errorf("opening raw socket: %w", err)
	}
	return fd, nil
}

func getsockopt(fd, opt int, buf []byte) (int, error) {
	n := uint32(len(buf))
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.IPPROTO_IP, uintptr(opt),
		uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

func setsockopt(fd, opt int, buf []byte) error {
	_, _, errno := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.IPPROTO_IP, uintptr(opt),
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

// readTable reads a whole table: IPT_SO_GET_INFO, then IPT_SO_GET_ENTRIES
// with the size it reported. EAGAIN means the table changed in between.
func readTable(fd int, name string) (*iptTable, error) {
	info := make([]byte, getinfoSize)
	if err := putName(info, name); err != nil {
		return nil, err
	}
	if n, err := getsockopt(fd, iptSoGetInfo, info); err != nil {
		return nil, fmt.Errorf("getting info of table %s: %w", name, err)
	} else if n != getinfoSize {
		return nil, fmt.Errorf("getting info of table %s: short answer (%d bytes)", name, n)
	}
	t := &iptTable{
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
	if n, err := getsockopt(fd, iptSoGetEntries, buf); err != nil {
		return nil, fmt.Errorf("getting entries of table %s: %w", name, err)
	} else if n != len(buf) {
		return nil, fmt.Errorf("getting entries of table %s: short answer (%d of %d bytes)", name, n, len(buf))
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
	err := setsockopt(fd, iptSoSetReplace, req)
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
// table) to the table's entries with IPT_SO_SET_ADD_COUNTERS.
func addCounters(fd int, name string, counters []byte) error {
	buf := make([]byte, countersInfoHeader+len(counters))
	if err := putName(buf, name); err != nil {
		return err
	}
	le.PutUint32(buf[countersInfoNum:], uint32(len(counters)/countersSize))
	copy(buf[countersInfoHeader:], counters)
	if err := setsockopt(fd, iptSoSetAddCounters, buf); err != nil {
		return fmt.Errorf("restoring counters of table %s: %w", name, err)
	}
	return nil
}

// kernelHasExtension asks the kernel whether it has revision 0 of the match
// or target name (IPT_SO_GET_REVISION_MATCH/_TARGET with struct
// xt_get_revision), as iptables does before using one. The kernel tries to
// load the module first; ENOENT means it has none by that name,
// EPROTONOSUPPORT that it lacks that revision.
func kernelHasExtension(fd int, name string, target bool) (bool, error) {
	buf := make([]byte, revisionSize)
	copy(buf[:xtNameLen-1], name)
	opt := iptSoGetRevisionMatch
	if target {
		opt = iptSoGetRevisionTarget
	}
	_, err := getsockopt(fd, opt, buf)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.EPROTONOSUPPORT):
		return false, nil
	default:
		return false, err
	}
}
