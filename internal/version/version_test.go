package version

import (
	"strings"
	"testing"
)

func TestStringNamesTheReleaseAndASetBuild(t *testing.T) {
	old := Build
	defer func() { Build = old }()
	Build = "abc123"
	if got := String(); got != Release+" (abc123)" {
		t.Fatalf("String() = %q", got)
	}
	if got := Long(); !strings.HasPrefix(got, Release+" (abc123), go") {
		t.Fatalf("Long() = %q", got)
	}
}
