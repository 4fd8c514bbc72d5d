// Package routing joins networks through a link that is up: routes to the
// networks behind the peer, IP forwarding, masquerade and a default route
// that keeps the SSH server reachable the old way. It knows nothing of SSH
// or PPP beyond an interface name and two addresses.
//
// Every change to the host is recorded in a journal only after it
// succeeded, and undone newest-first; undo goes on past failures and joins
// their errors. The journal is a file, so the changes of a process that died
// are still undone by the next start, stop or cleanup. What the program owns
// is recognisable on the host: routes carry RouteProtocol, firewall rules
// live in its own nftables table or carry its comment.
//
//	Router.Set(cfg)  diff against what is applied: undo what is no longer
//	                 wanted (newest first), apply what is new (recording each)
//	Router.Close()   undo everything, remove the journal
package routing
