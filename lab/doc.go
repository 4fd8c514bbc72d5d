// Package lab builds the test bench for vpn-pppssh: a kernel with PPP (the
// host's, or a User-Mode Linux kernel booted over the host's file system
// when the host has none), a client and a server network namespace joined
// by veth, a real OpenSSH sshd in the server namespace with its own host
// key, and real sudo rules for unprivileged accounts.
//
// Nothing it does reaches the host: inside the lab /etc, /root, /home and
// /var are overlays on tmpfs and /run is a tmpfs, so accounts, sudoers
// rules and state files vanish with it. Addresses are documentation ranges
// (RFC 5737): 192.0.2.0/24 on the veth, 198.51.100.0/24 inside tunnels.
package lab
