// Package device is the operating system's tun/tap device: a network
// interface whose packets (tun, layer 3) or Ethernet frames (tap, layer 2)
// are read and written by this process instead of a driver.
//
// Create makes the device and configures it the way an administrator would
// after `ssh -w` (MTU, address and point-to-point peer, bridge port, up):
//
//	Create(cfg)   validate cfg (nothing touched on error)
//	              look up cfg.Bridge (must exist, be a bridge, and have
//	              cfg.MTU if set: a port takes its bridge's MTU)
//	              open /dev/net/tun, TUNSETIFF (new device, this fd only)
//	              set MTU, add address (+peer), bridge port: set a MAC
//	              the bridge will not adopt and join, set up
//	              any failure: Close, which undoes newest-first
//	Read/Write    one packet (tun) or frame (tap) per call
//	Close         leave the bridge (if we joined it), close the fd: the
//	              kernel deletes the device with its addresses and routes
//
// The device is not persistent (no TUNSETPERSIST): it lives exactly as long
// as the file descriptor this process holds, so a process killed with
// SIGKILL leaves no interface behind and there is nothing to clean up
// after a crash. The device is created in the network namespace of the
// calling thread; everything Device does later (netlink included) stays in
// that namespace whichever thread calls it.
//
// Packets carry no header of the tun driver (IFF_NO_PI): a tun packet
// starts with the IP header, a tap frame with the Ethernet header. With
// Config.Offload a virtio-net header (VNetHdr) comes first, and TCP may
// come as super-packets of up to 64 KiB (offload_linux.go says how, and
// why nothing is ever cut in user space). Queue reads a device ahead of
// a consumer that batches. The
// Linux implementation is in the *_linux.go files; see
// Documentation/networking/tuntap.rst in the Linux sources.
package device
