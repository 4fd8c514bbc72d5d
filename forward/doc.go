// Package forward runs OpenSSH's port forwards over a link's SSH
// connection: local (-L, LOCAL_FORWARDS), remote (-R, REMOTE_FORWARDS) and
// dynamic (-D, DYNAMIC_FORWARDS, a SOCKS 4, 4a and 5 proxy), in OpenSSH's
// own syntax, TCP ports and Unix sockets alike.
//
// A Set binds every listener of its specs when it starts, or none: the
// first that fails closes the others and its error names the forward, as
// written, and what refused it (this host's bind, or the server: sshd's
// AllowTcpForwarding, AllowStreamLocalForwarding, GatewayPorts or
// PermitListen). Close closes the listeners and every forwarded
// connection, and returns once each goroutine of the Set has returned.
// A Set lives as long as one link's run on its SSH connection: the link
// makes a new one on each redial (and on a connection it reuses when only
// pppd died), which is how the forwards follow the link's keepalives and
// redials (autossh's job).
//
// Why not a SOCKS library: the proxy must take its connections from the
// SSH connection, stop with the Set and join its goroutines, and speak
// SOCKS 4 as OpenSSH's -D does; the CONNECT-only subset that needs is
// small, and is written here with bounds on everything a client sends.
package forward
