package main

import (
	"runtime"
	"testing"
)

func TestCarrierProcsOneUnlessSet(t *testing.T) {
	was := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(was) })
	runtime.GOMAXPROCS(3)
	carrierProcs(func(string) string { return "3" })
	if n := runtime.GOMAXPROCS(0); n != 3 {
		t.Fatalf("GOMAXPROCS set by the admin: %d Ps, want their 3", n)
	}
	carrierProcs(func(string) string { return "" })
	if n := runtime.GOMAXPROCS(0); n != 1 {
		t.Fatalf("%d Ps, want 1", n)
	}
}
