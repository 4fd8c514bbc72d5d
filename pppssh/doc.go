// Package pppssh runs one PPP-over-SSH link: it parses the link's
// configuration, dials the server with golang.org/x/crypto/ssh, starts the
// server's pppd through sudo on an SSH session, starts the local pppd on a
// pseudo-terminal and joins the two.
//
// It changes no routes and no firewall rules; the interface and addresses it
// reports are what pppd negotiated (pppd(8): "local  IP address",
// "remote IP address"), confirmed through netlink.
//
// Lifecycle of a Link:
//
//	New (validates, touches nothing)
//	 └─ Start(ctx): dial SSH ║ spawn local pppd ─→ start server pppd ─→ wait for IPCP up
//	     ├─ error: everything started so far is undone before Start returns;
//	     │         Wait returns the same error
//	     └─ up: Wait blocks until either pppd or the session ends
//	Close: SIGTERM local pppd (it sends LCP Terminate-Request), close the
//	session, close the SSH connection, close the pty, join every goroutine
//	of the link. Safe to call twice, before, during or after Start and
//	concurrently with Wait, which then returns ErrClosed.
package pppssh
