package safetext

import "testing"

func TestEscape(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain text 1.2.3.4", "plain text 1.2.3.4"},
		{"déjà vu", "déjà vu"},
		{"\x1b]0;owned\x07title", `\x1b]0;owned\x07title`},
		{"ok\rFAKE", `ok\x0dFAKE`},
		{"two\nlines", `two\x0alines`},
		{"tab\there", "tab here"},
		{"\x9b31m", `\x9b31m`}, // a lone byte 0x9b is not UTF-8
		{"\u009b31m", `\u009b31m`},
		{"abc\u202edef", `abc\u202edef`},
		{`back\slash`, `back\\slash`},
		{"\x7f", `\x7f`},
		{"\xff\xfe", `\xff\xfe`},
	} {
		if got := Escape(tc.in); got != tc.want {
			t.Errorf("Escape(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestLines(t *testing.T) {
	if got, want := Lines("a\x1b[2J\r\nb"), "a\\x1b[2J\nb"; got != want {
		t.Errorf("Lines = %q, want %q", got, want)
	}
}

func FuzzEscape(f *testing.F) {
	f.Add("\x1b[31mred\x00")
	f.Fuzz(func(t *testing.T, s string) {
		out := Escape(s)
		for i := 0; i < len(out); i++ {
			if c := out[i]; c < 0x20 || c == 0x7f {
				t.Fatalf("Escape(%q) = %q keeps control byte %#x", s, out, c)
			}
		}
		if !clean(s) {
			return
		}
		if out != s {
			t.Fatalf("Escape changed clean text %q to %q", s, out)
		}
	})
}
