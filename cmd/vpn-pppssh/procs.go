package main

import "runtime"

// carrierProcs puts the processes that carry a link's packets (the link's
// own process and serve) on one P, unless the admin set GOMAXPROCS.
//
// Their work is a few goroutines handing packets along a pipeline, tens of
// thousands of times a second. With a P per core, each hand-off wakes an
// idle thread that spins looking for work on a core that sshd, pppd or
// the applications need. Measured with `vpn-lab --cycles 3 --rounds 5
// --seconds 5 bench-host` on a 2-core machine: MODE=tun carried 604 Mbit/s
// over OpenSSH's forwarding and 609 through the helper on one P, against
// 436 and 419 on two, at 6.7 against 11 CPU seconds per GB; RTT unchanged.
func carrierProcs(getenv func(string) string) {
	if getenv("GOMAXPROCS") != "" {
		return // the runtime read it
	}
	runtime.GOMAXPROCS(1)
}
