// Package zero holds the one read-only zero page the writers share: Is
// reports whether a page is all zero bytes, Page returns a zero page.
package zero

import "bytes"

// MaxPage is the largest page size of a supported architecture (ia64 and
// ppc64 may use 64 KiB).
const MaxPage = 1 << 16

var page [MaxPage]byte

// Is reports whether b holds only zero bytes. It is fast for page-sized b
// (bytes.Equal against a zero page is vectorised).
func Is(b []byte) bool {
	for len(b) > MaxPage {
		if !bytes.Equal(b[:MaxPage], page[:]) {
			return false
		}
		b = b[MaxPage:]
	}
	return bytes.Equal(b, page[:len(b)])
}

// Page returns a zero page of n bytes (n <= MaxPage). The caller must not
// write to it.
func Page(n int) []byte { return page[:n:n] }
