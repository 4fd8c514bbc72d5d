// Package supervise keeps one link up for the life of a process: it dials
// a session through a Driver (the link and what is joined to it: routes,
// rules, hooks), waits for it to end, takes it down completely, and
// redials with a doubling holdoff, whatever the link's carrier.
//
//	Connect ──ok──▶ up ──ended / redial asked──▶ Session.Close ──Persist off──▶ Run returns
//	  (connecting)   ▲                               │
//	                 │                               ▼
//	                 └── Dial ◀── waiting (1 s, 2 s … HoldoffMax)
//	                      │                 ▲
//	                      └──── failed ─────┘  (MaxFail in a row, or a
//	                                            permanent error: Run returns)
//
// A session is closed before the next dial, so there are never two
// interfaces or two sets of routes for one link. The wait doubles from
// 1 s up to HoldoffMax and starts again from 1 s once a session has stayed
// up for a minute; a value on the redial channel (the program's SIGHUP)
// skips it, and so does the server's SSH port answering again (a bare TCP
// connect every 2 s, no login), so that a path that comes back after a
// long outage is used at once. A session that ended by itself while its
// SSH connection still answers (a Keeper: the server's pppd died, not the
// path) hands the connection to the next Dial, which is made at once: the
// redial costs the carrier's start, not a holdoff, a TCP connect, a key
// exchange and a login. A session that went down in place (a Renewer:
// the server helper restarted its pppd on the terminal it holds, and the
// local pppd renegotiates) is not closed at all with Persist: it is
// published connecting, renewed (hooks, routes and rules taken down and
// joined again once the link is back) and counted as a redial; one that
// does not come back is closed and redialled as above. Every change of
// phase is published through the Driver (the program writes its state
// file and tells systemd).
package supervise
