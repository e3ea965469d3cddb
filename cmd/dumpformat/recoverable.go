package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/dumpkit/dumpkit/diskdump"
)

// recoverableJSON is what savecore would recover from a dump that is not
// final (-c -v, --json): the header's written_blocks is only a hint for it
// (doc/FORMAT.md §9.4, §9.5), so the pages are counted from the disk.
type recoverableJSON struct {
	Pages         uint64 `json:"pages"`
	Lost          uint64 `json:"pages_lost"`
	BeyondWritten uint64 `json:"pages_beyond_written_blocks"`
	BeyondWhy     string `json:"beyond_written_blocks_why,omitempty"`
}

// countRecoverable walks the pages of a dump whose status is not final, as
// savecore will, without decompressing them. It returns nil for a final
// dump or when the partition cannot be opened (the check says why).
func countRecoverable(r io.ReaderAt, size int64, h *diskdump.Header) *recoverableJSON {
	if h == nil {
		return nil
	}
	if st := h.Status.State(); st == diskdump.StatusCompleted || st == diskdump.StatusShortArea {
		return nil
	}
	p, err := diskdump.OpenPartition(r, size)
	if err != nil {
		return nil
	}
	for range p.Pages() {
	}
	st := p.Stats()
	return &recoverableJSON{Pages: st.Found, Lost: st.Lost, BeyondWritten: st.BeyondWritten, BeyondWhy: st.BeyondWhy}
}

// text is the -c -v line of an interrupted dump.
func (r *recoverableJSON) text() string {
	if r == nil {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "  recoverable: %d pages (%d lost), %d of them past the header's written_blocks\n", r.Pages, r.Lost, r.BeyondWritten)
	if r.BeyondWhy != "" {
		fmt.Fprintf(&b, "               %s\n", r.BeyondWhy)
	}
	return b.String()
}
