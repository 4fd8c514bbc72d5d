// Package safetext makes text that came from elsewhere (the SSH server's
// stderr, its refusal line, a config value, a file name) safe to show on a
// terminal or write to a log line: control characters, escape sequences and
// invalid UTF-8 are made visible instead of being interpreted. A hostile
// server could otherwise move root's cursor, retitle the window, or hide
// text behind a carriage return.
package safetext

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Escape returns s with every control character (C0, DEL, C1, and the
// Unicode format characters that reorder text such as U+202E), and every
// byte that is not valid UTF-8, written as a Go-style escape (\x1b, \u202e).
// Printable text, including non-ASCII letters, is kept as it is. A tab is
// shown as a space; newlines are escaped too, so one value stays one line.
func Escape(s string) string {
	if clean(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\t':
			b.WriteByte(' ')
		case r == '\\':
			b.WriteString(`\\`)
		case unsafeRune(r):
			if r < 0x80 {
				fmt.Fprintf(&b, `\x%02x`, r)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// Lines is Escape for text of several lines: each line is escaped and the
// lines are kept apart by "\n" (a trailing "\r" before each is dropped).
func Lines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = Escape(strings.TrimSuffix(l, "\r"))
	}
	return strings.Join(lines, "\n")
}

func clean(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '\\' {
			return false
		}
	}
	return true
}

func unsafeRune(r rune) bool {
	return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) ||
		unicode.Is(unicode.Cf, r) || r == utf8.RuneError
}
