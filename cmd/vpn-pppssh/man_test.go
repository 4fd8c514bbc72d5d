package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/vpn-pppssh/vpn-pppssh/internal/rundir"
	"github.com/vpn-pppssh/vpn-pppssh/pppssh"
)

// Every line of a page is text or one of the requests the pages use: a
// key's usage or a flag's text can never start a roff request.
func checkRoff(t *testing.T, page string) {
	t.Helper()
	for i, line := range strings.Split(strings.TrimSuffix(page, "\n"), "\n") {
		if !strings.HasPrefix(line, ".") && !strings.HasPrefix(line, "'") {
			continue
		}
		req, _, _ := strings.Cut(line, " ")
		switch req {
		case ".TH", ".SH", ".PP", ".TP", ".B", ".I", ".BR", ".br", ".nf", ".fi":
		default:
			t.Errorf("line %d starts a roff request %q: %q", i+1, req, line)
		}
	}
}

func TestManPages(t *testing.T) {
	out8, _, code := runSplit(t, rundir.Dir(t.TempDir()), t.TempDir(), "--print-man", "8")
	if code != exitOK {
		t.Fatalf("--print-man 8: exit %d", code)
	}
	checkRoff(t, out8)
	for _, want := range []string{".TH VPN-PPPSSH 8", ".SH \"EXIT STATUS\"", `\-\-server\-hostname`, ".B 6\n"} {
		if !strings.Contains(out8, want) {
			t.Errorf("vpn-pppssh(8) lacks %q", want)
		}
	}
	out5, _, code := runSplit(t, rundir.Dir(t.TempDir()), t.TempDir(), "--print-man", "5")
	if code != exitOK {
		t.Fatalf("--print-man 5: exit %d", code)
	}
	checkRoff(t, out5)
	for _, k := range pppssh.Keys {
		if !strings.Contains(out5, ".B "+roffEscape(k.Name)+"\n") {
			t.Errorf("vpn-pppssh.conf(5) lacks %s", k.Name)
		}
	}
	if _, _, code := runSplit(t, rundir.Dir(t.TempDir()), t.TempDir(), "--print-man", "1"); code != exitUsage {
		t.Errorf("--print-man 1: exit %d, want 2", code)
	}
}

func TestRoffEscape(t *testing.T) {
	for in, want := range map[string]string{
		".so /etc/shadow": `\&.so /etc/shadow`,
		"'bp":             `\&'bp`,
		`a\fBb`:           `a\efBb`,
		"x\n.ex":          "x\n\\&.ex",
		"--flag":          `\-\-flag`,
	} {
		if got := roffEscape(in); got != want {
			t.Errorf("roffEscape(%q) = %q, want %q", in, got, want)
		}
	}
}

// The commented example that make install puts beside the docs is a
// valid configuration.
func TestExampleConfigIsValid(t *testing.T) {
	b, err := os.ReadFile("../../scripts/vpn.conf.example")
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range [][]byte{b, []byte(exampleConfig)} {
		c := pppssh.Defaults()
		c.Name = "office"
		if _, err := c.Parse("example", text); err != nil {
			t.Fatalf("example: %v", err)
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("example: %v", err)
		}
	}
	if !bytes.Contains(b, []byte("SERVER_HELPER")) {
		t.Error("the example does not show SERVER_HELPER")
	}
}
