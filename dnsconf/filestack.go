package dnsconf

import (
	"bytes"
	"fmt"
	"slices"
)

// Links that use the file backend at once stack: each records as its
// original what the one before it wrote. The top one's undo is a plain
// restore. Undoing one below the top (a link that goes down first, or the
// Cleanup of one that died) takes it out of the stack instead: the links
// above it are rebased, in order, on its original, their state files
// rewritten, and the top one's text, rebuilt, written to resolv.conf.
//
//	original <- A wrote a <- B wrote b (on disk)
//	A goes:   original <- B wrote b' = B's settings over the original
//
// Every step is recomputed from the state files, so it can be done again
// after a crash half way: resolv.conf is written first, then the state
// files from the top down, so that at any point the stack is the links not
// yet rebased (their originals the old texts) under those already rebased
// (their originals the new texts), and both are followed.

// rebase takes st out from under the links whose state files say they
// wrote over it, when resolv.conf (cur) is the top one's text. It reports
// false, changing nothing, when no such stack leads from st to cur.
func rebase(h *host, st *state, cur onDisk) (bool, error) {
	var others []*state
	for _, o := range otherStates(h.runDir, st.Link) {
		if o.Backend == BackendFile && o.File.Path == st.File.Path {
			others = append(others, o)
		}
	}
	// The links stacked on st, bottom first, each with its rebased state:
	// the one above st is found by its original, which is what st wrote
	// (not rebased yet) or st's original (rebased already).
	var stack []*state
	var rebased []*fileState
	oldBase := fileState{Existed: true, Original: st.File.Written}
	newBase := *st.File
	for {
		next := findOn(others, stack, oldBase, newBase)
		if next == nil {
			break
		}
		nf := &fileState{Path: newBase.Path, Existed: newBase.Existed, Symlink: newBase.Symlink, Original: newBase.Original,
			Mode: newBase.Mode, UID: newBase.UID, GID: newBase.GID}
		nf.Written = mergeText(next.config(), nf.Original)
		stack, rebased = append(stack, next), append(rebased, nf)
		mode, uid, gid := nf.writtenMode()
		oldBase = fileState{Existed: true, Original: next.File.Written}
		newBase = fileState{Path: nf.Path, Existed: true, Original: nf.Written, Mode: mode, UID: uid, GID: gid}
	}
	if len(stack) == 0 || !cur.regular {
		return false, nil
	}
	top, newTop := stack[len(stack)-1], rebased[len(rebased)-1]
	switch {
	case bytes.Equal(cur.content, newTop.Written):
		// Written already, by an undo that died before the state files.
	case bytes.Equal(cur.content, top.File.Written):
		mode, uid, gid := newTop.writtenMode()
		if err := h.writeFile(newTop.Path, newTop.Written, mode, uid, gid); err != nil {
			return false, fmt.Errorf("writing it for link %s: %w", top.Link, err)
		}
	default:
		return false, nil
	}
	for i := len(stack) - 1; i >= 0; i-- {
		stack[i].File = rebased[i]
		if err := h.writeState(stack[i]); err != nil {
			return false, err
		}
	}
	h.log.Info("taken out from under other links", "link", st.Link, "file", st.File.Path, "links", len(stack))
	return true, nil
}

// findOn returns the link among others, and not in stack, whose original
// is one of bases.
func findOn(others, stack []*state, bases ...fileState) *state {
	for _, o := range others {
		if slices.Contains(stack, o) {
			continue
		}
		for _, b := range bases {
			if o.File.Existed == b.Existed && o.File.Symlink == b.Symlink && bytes.Equal(o.File.Original, b.Original) {
				return o
			}
		}
	}
	return nil
}
