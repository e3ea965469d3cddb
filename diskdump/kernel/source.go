package kernel

// MemorySource is the memory of the machine that crashed, as the kernel
// writer (WriteDump) sees it: the PFN range, which PFNs are RAM, the bytes
// of a page and the struct page attributes that dump_level tests
// (doc/FORMAT.md §6.4). WriteDump calls it from several goroutines
// (Config.Workers): implementations must be safe for concurrent use, or the
// caller sets Workers to 1. NewSyntheticMachine and NewELFCoreSource
// provide the two implementations of this package.
type MemorySource interface {
	// MaxPFN is max_pfn: one past the highest page frame number.
	MaxPFN() uint64
	// IsRAM is page_is_ram(pfn): whether pfn (< MaxPFN) is RAM.
	IsRAM(pfn uint64) bool
	// ReadPage fills dst (one page) with the content of RAM page pfn.
	ReadPage(pfn uint64, dst []byte) error
	// Attrs returns the struct page attributes of RAM page pfn.
	Attrs(pfn uint64) PageAttrs
}

// PageAttrs are the properties of a page's struct page that the RHEL4
// diskdump kernel looks at (doc/FORMAT.md §6.3, §6.4).
type PageAttrs struct {
	// Flags is struct page's flags word: the record's page_flags in a
	// compressed dump, and the "flags" of a "Bad page" text.
	Flags uint64
	// LRU (PG_lru), SwapCache (PG_swapcache), Anon (PageAnon: mapping
	// has PAGE_MAPPING_ANON), Private (PG_private), Free (on a buddy free
	// list: tagged PG_nosave_free at dump time).
	LRU, SwapCache, Anon, Private, Free bool
	// BadPage: pfn_to_page(pfn) does not map back to pfn (corrupt struct
	// page). Unmapped: the page has no kernel mapping (kern_addr_valid
	// fails). The kernel dumps a text page instead of the content.
	BadPage, Unmapped bool
}

// Linux 2.6.9 page flag bit numbers (include/linux/page-flags.h), used to
// make the synthetic machine's Flags consistent with its attributes.
const (
	pgReferenced  = 2
	pgUptodate    = 3
	pgDirty       = 4
	pgLRU         = 5
	pgActive      = 6
	pgSlab        = 7
	pgReserved    = 11
	pgPrivate     = 12
	pgSwapCache   = 16
	pgNosaveFree  = 19 // set on free pages when dump_level has EXCLUDE_FREE
	pgZoneShift64 = 62 // zone number in the top bits (64-bit kernels)
	pgZoneShift32 = 30 // zone number in the top bits (32-bit kernels)
)
