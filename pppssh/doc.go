// Package pppssh runs one link over SSH: it parses the link's
// configuration, dials the server with golang.org/x/crypto/ssh (host keys,
// authentication, keepalives and the dead-link check), and has a carrier
// move IP over that connection. The carrier is chosen by MODE:
//
//	            ┌──────────────── Link ─────────────────┐
//	            │ Config · dial · host keys · auth      │
//	            │ keepalive · dead-link check           │
//	            │ Start / Wait / Done / Close           │
//	            └───────────────┬───────────────────────┘
//	                            │ Carrier (carrier.go)
//	            ┌───────────────┴───────────────────────┐
//	MODE=ppp    pppCarrier (ppp_carrier.go, pppd*.go, pty.go):
//	            local pppd on a pty ⇄ session ⇄ sudo pppd, or the helper
//	MODE=tun,   package tunnel, passed in as Options.Carrier:
//	ethernet    tun/tap device ⇄ tun@openssh.com channel, or the helper
//
// Both carriers that use the server helper run it on a session whose
// stderr is watched (session.go): its lines are logged and kept for
// errors, and its verdict (ServerReadyMarker, ServerFailedMarker) read.
//
// It changes no routes and no firewall rules; the interface and addresses
// it reports are what the carrier brought up (PPP: what pppd negotiated,
// pppd(8): "local  IP address", "remote IP address"), confirmed through
// netlink.
//
// Lifecycle of a Link:
//
//	New (validates, touches nothing)
//	 └─ Start(ctx): dial SSH ║ carrier.Prepare (PPP: spawn the local pppd)
//	     ─→ carrier.Start(client) (PPP: start the server's pppd or helper,
//	        join it to the pty, wait for IPCP up)
//	     ├─ error: everything started so far is undone before Start returns;
//	     │         Wait returns the same error
//	     └─ up: Wait blocks until the carrier ends or the keepalive gives up
//	Lapsed, Renewed (PPP): the link went down in place and came back
//	without ending (the server helper restarted its pppd on the link's
//	terminal; the local pppd renegotiated): the owner sets the link's
//	routes and hooks again with what Renewed reports
//	Detach (optional, after the link ended by itself, before Close): if
//	the server still answers a keepalive, take the SSH connection out of
//	the link for its next run (Options.Client: Start skips the dial)
//	Close: close the carrier (PPP: SIGTERM the local pppd, which sends LCP
//	Terminate-Request; close the session), close the SSH connection
//	unless Detach took it, join every goroutine of the link. Safe to call
//	twice, before, during or after Start and concurrently with Wait,
//	which then returns ErrClosed.
package pppssh
