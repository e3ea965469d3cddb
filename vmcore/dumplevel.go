package vmcore

import (
	"fmt"

	"github.com/dumpkit/dumpkit/diskdump"
	"github.com/dumpkit/dumpkit/internal/zero"
)

// DumpLevel is a set of diskdump dump_level bits (doc/FORMAT.md §6.4): the
// pages a partial dump leaves out. These are the RHEL4 kernel's bits, not
// makedumpfile's -d bits (doc/FORMAT.md §10.3), which mean something
// else.
type DumpLevel int

// Dump level bits.
const (
	// ExcludeCache leaves out non-anonymous pages on the LRU or in the
	// swap cache.
	ExcludeCache DumpLevel = 1
	// ExcludeClean leaves out pages whose bytes are all zero.
	ExcludeClean DumpLevel = 2
	// ExcludeFree leaves out free pages. Only the kernel can tell them:
	// after the dump nothing in a page's record says it was free.
	ExcludeFree DumpLevel = 4
	// ExcludeAnon leaves out anonymous pages.
	ExcludeAnon DumpLevel = 8
	// SavePrivate, with ExcludeCache, keeps cache pages with PG_private.
	SavePrivate DumpLevel = 16

	// allLevels is every bit of the kernel's dump_level.
	allLevels = ExcludeCache | ExcludeClean | ExcludeFree | ExcludeAnon | SavePrivate
)

// Bit numbers in struct page's flags word of the RHEL4 kernel (Linux 2.6.9,
// include/linux/page-flags.h), the page_flags of a compressed dump's
// records; RHEL3 has no compressed dumps.
const (
	pgLRU       = 5
	pgPrivate   = 12
	pgSwapCache = 16
)

func (l DumpLevel) String() string {
	return fmt.Sprintf("%d", int(l))
}

// Split returns the part of the level Write can apply to a dump, and the
// part it cannot: ExcludeFree always, and on a dump without page flags
// (a raw dump: no records) every bit but ExcludeClean.
func (l DumpLevel) Split(pageFlags bool) (applied, unapplied DumpLevel) {
	l &= allLevels
	unapplied = l & ExcludeFree
	if !pageFlags {
		unapplied = l &^ ExcludeClean
	}
	return l &^ unapplied, unapplied
}

// checkDumpLevel rejects bits the kernel does not know.
func checkDumpLevel(l DumpLevel) error {
	if l < 0 || l&^allLevels != 0 {
		return fmt.Errorf("diskdump: dump_level %d: bits beyond %d: %w", l, allLevels, diskdump.ErrUnsupportedVersion)
	}
	return nil
}

// Makedumpfile is the makedumpfile -d level that leaves out the same
// kinds of pages, as near as its bits allow: ExcludeClean is its 1,
// ExcludeCache its 2 and, without SavePrivate, 4 (cache pages with private
// data), ExcludeFree its 16 and ExcludeAnon its 8 (user data). It is what
// a KDUMP file records in its sub-header, whose dump_level field
// makedumpfile's readers (crash) decode with makedumpfile's bits.
func (l DumpLevel) Makedumpfile() int {
	var m int
	if l&ExcludeClean != 0 {
		m |= 1
	}
	if l&ExcludeCache != 0 {
		m |= 2
		if l&SavePrivate == 0 {
			m |= 4
		}
	}
	if l&ExcludeAnon != 0 {
		m |= 8
	}
	if l&ExcludeFree != 0 {
		m |= 16
	}
	return m
}

// levelFromMakedumpfile is the part of a makedumpfile -d level that
// diskdump's bits express (the inverse of Makedumpfile for the levels it
// makes): what a KDUMP file records as already left out.
func levelFromMakedumpfile(m int) DumpLevel {
	var l DumpLevel
	if m&1 != 0 {
		l |= ExcludeClean
	}
	switch m & 6 {
	case 6:
		l |= ExcludeCache
	case 2:
		l |= ExcludeCache | SavePrivate
	}
	if m&8 != 0 {
		l |= ExcludeAnon
	}
	if m&16 != 0 {
		l |= ExcludeFree
	}
	return l
}

// levelFilter applies a dump level to the pages of a dump, in the kernel's
// order (doc/FORMAT.md §6.4), from what each page's record says: its
// page_flags, its MAPPING_ANON flag and its content. The first two tests
// of the kernel cannot be made after the dump: a bad struct page or an
// unmapped page was dumped as a text page at level 0; both stay.
type levelFilter struct {
	level DumpLevel // the bits to apply
	b     int
	// rawAnonUnknown: a raw page without MAPPING_ANON may still be
	// anonymous (a DISKDUMP vmcore keeps the flag only on zlib pages by
	// default), so neither the cache nor the anonymous rule decides it.
	rawAnonUnknown bool
	page           []byte // scratch page for inflating zlib records
}

// levelFilter is the filter of the bits Write applies to s's pages.
func (s *source) levelFilter() *levelFilter {
	return &levelFilter{level: s.apply, b: s.blockSize(), rawAnonUnknown: s.rawAnonUnknown}
}

// excludes reports whether the level leaves out the page of a record:
// data as stored (a zlib stream when compressed), recFlags its record
// flags. A zlib record is inflated only when a zero page is possible
// (zeroCandidate); one that does not inflate is not excluded, and the
// writer reports it as it would without a level.
func (f *levelFilter) excludes(data []byte, compressed bool, recFlags uint32, pageFlags uint64) bool {
	l := f.level
	if l == 0 {
		return false
	}
	private := pageFlags>>pgPrivate&1 != 0
	cache := pageFlags>>pgLRU&1 != 0 || pageFlags>>pgSwapCache&1 != 0
	anon := recFlags&PageDescMappingAnon != 0
	known := anon || compressed || !f.rawAnonUnknown // whether anon is the truth
	switch {
	case l&ExcludeCache != 0 && l&SavePrivate != 0 && private:
		return false
	case l&ExcludeCache != 0 && known && !anon && cache:
		return true
	case l&ExcludeClean != 0 && f.isZero(data, compressed):
		return true
	case l&ExcludeAnon != 0 && anon:
		return true
	}
	return false
}

// isZero reports whether the page of a record is all zeros.
func (f *levelFilter) isZero(data []byte, compressed bool) bool {
	if !compressed {
		return zero.Is(data)
	}
	if !zeroCandidate(len(data), f.b) {
		return false
	}
	if f.page == nil {
		f.page = make([]byte, f.b)
	}
	return diskdump.Inflate(f.page, data) == nil && zero.Is(f.page)
}
