package device

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
)

// noDeadline is the zero time: no deadline.
var noDeadline time.Time

// Device is a tun or tap device made by Create. Read, Write and Counters
// may be called from several goroutines, and concurrently with Close.
type Device struct {
	file  *os.File // non-blocking, registered with the runtime poller
	name  string
	index int
	kind  Kind
	vnet  bool // Config.Offload: a VNetHdr before every packet
	tso   bool // the kernel took TSO (setOffload)

	mu     sync.Mutex      // guards h against Close
	h      *netlink.Handle // in the namespace the device was created in
	closed bool

	// bridge is the index of the bridge configure made the device a port
	// of, 0 if none; Close undoes that membership.
	bridge     int
	bridgeName string

	closeOnce sync.Once
	closeErr  error
}

// Name is the interface name (the kernel's choice when Config.Name was
// empty).
func (d *Device) Name() string { return d.name }

// Index is the interface index.
func (d *Device) Index() int { return d.index }

// Kind is TUN or TAP.
func (d *Device) Kind() Kind { return d.kind }

// Read reads exactly one packet (TUN) or frame (TAP) into p. It blocks
// until one is there; after Close it returns an error matching
// os.ErrClosed. The kernel cuts a packet longer than p to len(p) without
// saying so: give p ReadSize bytes, since an administrator may raise
// the MTU of a running device. On a device with Config.Offload the packet
// starts with a VNetHdr.
func (d *Device) Read(p []byte) (int, error) {
	n, err := d.file.Read(p)
	if err != nil {
		return n, fmt.Errorf("reading from %s: %w", d.name, unwrapPath(err))
	}
	return n, nil
}

// Write writes p as one packet (TUN) or frame (TAP). A packet the kernel
// refuses as malformed gives an error matching ErrMalformed; the device
// stays usable. After Close the error matches os.ErrClosed.
//
// On a device with Config.Offload, p starts with a VNetHdr, which is
// checked (VNetHdr.Check) before the kernel sees it: one that fails is
// ErrMalformed too.
func (d *Device) Write(p []byte) (int, error) {
	if d.vnet {
		if len(p) < VNetHdrLen {
			return 0, fmt.Errorf("writing %d bytes to %s: shorter than a virtio-net header: %w", len(p), d.name, ErrMalformed)
		}
		if err := ParseVNetHdr(p).Check(len(p) - VNetHdrLen); err != nil {
			return 0, fmt.Errorf("writing a %d-byte %s to %s: %w (%w)", len(p)-VNetHdrLen, d.unit(), d.name, ErrMalformed, err)
		}
	}
	n, err := d.file.Write(p)
	if err != nil {
		err = unwrapPath(err)
		if errors.Is(err, syscall.EINVAL) {
			return n, fmt.Errorf("writing a %d-byte %s to %s: %w (%v)", len(p), d.unit(), d.name, ErrMalformed, err)
		}
		return n, fmt.Errorf("writing a %d-byte %s to %s: %w", len(p), d.unit(), d.name, err)
	}
	return n, nil
}

// unit is what one Read or Write carries.
func (d *Device) unit() string {
	if d.kind == TAP {
		return "frame"
	}
	return "packet"
}

// unwrapPath drops os.File's *PathError, whose path is always
// /dev/net/tun: the device name says more.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Counters are the device's statistics as the kernel keeps them. The
// kernel's "rx" is what this process wrote (the kernel received it from
// the device) and "tx" what it routed out through the device for this
// process to read. A TUN packet refused as malformed counts in RxDropped;
// a TAP frame shorter than an Ethernet header counts nowhere, so callers
// count ErrMalformed themselves.
type Counters struct {
	RxPackets, RxBytes, RxErrors, RxDropped uint64
	TxPackets, TxBytes, TxErrors, TxDropped uint64
}

// Counters reads the device's statistics over netlink (IFLA_STATS64).
func (d *Device) Counters() (Counters, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return Counters{}, fmt.Errorf("reading the counters of %s: %w", d.name, os.ErrClosed)
	}
	link, err := d.h.LinkByIndex(d.index)
	if err != nil {
		return Counters{}, fmt.Errorf("reading the counters of %s: %w", d.name, err)
	}
	s := link.Attrs().Statistics
	if s == nil {
		return Counters{}, fmt.Errorf("reading the counters of %s: the kernel sent none", d.name)
	}
	return Counters{
		RxPackets: s.RxPackets, RxBytes: s.RxBytes, RxErrors: s.RxErrors, RxDropped: s.RxDropped,
		TxPackets: s.TxPackets, TxBytes: s.TxBytes, TxErrors: s.TxErrors, TxDropped: s.TxDropped,
	}, nil
}

// Close removes the device. In order: it takes the device out of the
// bridge it joined (only if it is still that bridge's port; the kernel
// would on deletion too, but this keeps the undo explicit and the bridge
// untouched even if the fd had escaped to another process), then closes
// the fd, which wakes a blocked Read with os.ErrClosed and makes the
// kernel delete the device with its addresses and routes, and last the
// netlink socket. Undo goes on past failures; their errors are joined.
// Close is idempotent: later calls return the first call's error.
func (d *Device) Close() error {
	d.closeOnce.Do(func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		d.closed = true
		var errs []error
		if d.bridge != 0 {
			if err := d.leaveBridge(); err != nil {
				errs = append(errs, err)
			}
		}
		if err := d.file.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing %s: %w", d.name, unwrapPath(err)))
		}
		d.h.Close()
		d.closeErr = errors.Join(errs...)
	})
	return d.closeErr
}

// leaveBridge undoes configure's LinkSetMasterByIndex, if the device is
// still a port of that bridge (someone may have moved it since).
func (d *Device) leaveBridge() error {
	link, err := d.h.LinkByIndex(d.index)
	if err != nil {
		return fmt.Errorf("removing %s from bridge %s: %w", d.name, d.bridgeName, err)
	}
	if link.Attrs().MasterIndex != d.bridge {
		return nil
	}
	if err := d.h.LinkSetNoMaster(link); err != nil {
		return fmt.Errorf("removing %s from bridge %s: %w", d.name, d.bridgeName, err)
	}
	return nil
}
